#!/usr/bin/env bash
# datastores.sh makes sure the local PostgreSQL and Redis that `make run` and `make test` use are
# installed, running and reachable at 127.0.0.1, and that PostgreSQL has a superuser role named
# after the current OS user (reachable over TCP without a password) and the databases `pulse` and
# `test`. It also makes sure the server binaries that tests start private instances from
# (redis-server, initdb, pg_ctl, postgres), the Prometheus binaries the metrics tests run
# (prometheus, promtool) and the headless browser the status page test drives (chromium) are
# installed.
#
# It is idempotent and prints nothing when everything is already in place. As root it installs
# what is missing with apt-get; otherwise it says which command to run.
#
# Environment (all optional; the defaults are what the Makefile's URLs expect):
#   PULSE_PG_PORT            PostgreSQL port on 127.0.0.1 (5432)
#   PULSE_REDIS_PORT         Redis port on 127.0.0.1 (6379)
#   PULSE_PG_DATA            use (and initdb if empty) this data directory with pg_ctl instead of
#                            a Debian cluster managed by pg_ctlcluster
#   PULSE_PG_CLUSTER         name of the Debian cluster to create when none listens on the port (main)
#   PULSE_DATASTORES_TIMEOUT seconds to wait for a server to accept connections (60)
set -euo pipefail

readonly HOST=127.0.0.1
readonly PG_PORT=${PULSE_PG_PORT:-5432}
readonly REDIS_PORT=${PULSE_REDIS_PORT:-6379}
readonly PG_CLUSTER=${PULSE_PG_CLUSTER:-main}
readonly TIMEOUT=${PULSE_DATASTORES_TIMEOUT:-60}
readonly DATABASES=(pulse test)
ME=$(id -un)
readonly ME

say() { echo "datastores: $*" >&2; }
die() {
	echo "datastores: error: $*" >&2
	exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

# sql_literal and sql_ident quote a value for use in SQL text.
sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }
sql_ident() { printf '"%s"' "${1//\"/\"\"}"; }

# show_log prints the last lines of a server log to help explain a failure.
show_log() {
	if [ -r "$1" ]; then
		say "last lines of $1:"
		tail -n 20 "$1" >&2 || true
	fi
}

# ---------------------------------------------------------------------------------------------
# Binaries

# pg_bindir prints the directory holding the newest PostgreSQL server binaries, or nothing.
pg_bindir() {
	local dir best=""
	# An unmatched glob stays literal and fails the tests below.
	for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
		if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
			best=$dir
		fi
	done
	if [ -z "$best" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null &&
		command -v postgres >/dev/null; then
		best=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
	fi
	echo "$best"
}

# pg_client prints the path of a PostgreSQL client program: the server's own first (same
# version, and no wrapper to start), then PATH; nothing when there is none.
pg_client() {
	if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/$1" ]; then
		echo "$PG_BIN/$1"
	elif command -v "$1" >/dev/null; then
		command -v "$1"
	fi
}

# find_binaries sets PG_BIN, PSQL and PG_ISREADY, and says whether everything needed is there.
find_binaries() {
	PG_BIN=$(pg_bindir)
	PSQL=$(pg_client psql)
	PG_ISREADY=$(pg_client pg_isready)
	NEED_PACKAGES=()
	if [ -z "$PG_BIN" ] || [ -z "$PSQL" ] || [ -z "$PG_ISREADY" ]; then
		NEED_PACKAGES+=(postgresql)
	fi
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		NEED_PACKAGES+=(redis-server)
	fi
	# The metrics tests check a real scrape with promtool and query a real Prometheus.
	if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
		NEED_PACKAGES+=(prometheus)
	fi
	# The metrics tests load the status page in a real headless Chromium.
	if ! command -v chromium >/dev/null; then
		NEED_PACKAGES+=(chromium)
	fi
	[ ${#NEED_PACKAGES[@]} -eq 0 ]
}

ensure_binaries() {
	find_binaries && return 0
	local packages=("${NEED_PACKAGES[@]}")
	if ! is_root; then
		die "missing ${packages[*]}; install with:
    sudo apt-get update && sudo apt-get install -y ${packages[*]}"
	fi
	command -v apt-get >/dev/null || die "missing ${packages[*]} and no apt-get to install them"
	say "installing ${packages[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || die "apt-get update failed"
	apt-get install -y -q --no-install-recommends "${packages[@]}" </dev/null >/dev/null ||
		die "apt-get install ${packages[*]} failed"
	find_binaries || die "still missing after apt-get install: PostgreSQL server binaries
(initdb, pg_ctl, postgres: ${PG_BIN:-not found}), psql (${PSQL:-not found}),
pg_isready (${PG_ISREADY:-not found}), redis-server/redis-cli, prometheus/promtool or chromium"
}

# ---------------------------------------------------------------------------------------------
# Redis

# redis_ping prints what Redis answers to PING, or why it could not be asked.
redis_ping() { redis-cli --no-auth-warning -h "$HOST" -p "$REDIS_PORT" ping 2>&1 || true; }

ensure_redis() {
	local answer
	answer=$(redis_ping)
	case $answer in
	PONG) return 0 ;;
	*"Connection refused"* | *"Could not connect"*) ;;
	*) die "something answers on $HOST:$REDIS_PORT but not PONG to PING: $answer" ;;
	esac

	# As root, the same layout as the machine image's own Redis; otherwise a per-user directory.
	local dir logfile
	if is_root; then
		dir=/var/lib/redis
		logfile=/var/log/redis/ci.log
	else
		dir=${XDG_STATE_HOME:-$HOME/.local/state}/pulse/redis
		logfile=$dir/redis.log
	fi
	if [ "$REDIS_PORT" != 6379 ]; then
		dir=$dir/$REDIS_PORT
		logfile=$dir/redis.log
	fi
	mkdir -p "$dir" "$(dirname "$logfile")"

	say "starting Redis on $HOST:$REDIS_PORT"
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
		--save "" --appendonly no --dir "$dir" --logfile "$logfile" </dev/null ||
		{
			show_log "$logfile"
			die "redis-server did not start"
		}

	local deadline=$((SECONDS + TIMEOUT))
	until [ "$(redis_ping)" = PONG ]; do
		if [ $SECONDS -ge $deadline ]; then
			show_log "$logfile"
			die "Redis on $HOST:$REDIS_PORT did not answer PING within ${TIMEOUT}s"
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# pg_ready answers like pg_isready: 0 accepting connections, 1 up but rejecting them (starting
# or shutting down), 2 no answer.
pg_ready() { "$PG_ISREADY" -q -h "$HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

wait_pg_ready() {
	local deadline=$((SECONDS + TIMEOUT))
	until pg_ready; do
		if [ $SECONDS -ge $deadline ]; then
			show_log "$1"
			die "PostgreSQL on $HOST:$PG_PORT did not accept connections within ${TIMEOUT}s
(is it running, and does listen_addresses include $HOST?)"
		fi
		sleep 0.2
	done
}

# as_owner runs a command as the OS user that owns the server: postgres when we are root
# (PostgreSQL refuses to run as root), ourselves otherwise. It runs from / so that a user who
# cannot read the caller's working directory does not make it fail.
as_owner() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# pg_layout decides how the server on PG_PORT is managed: a data directory of our own run with
# pg_ctl (PG_DATA set), or a Debian cluster run with pg_ctlcluster (PG_DATA empty). It also sets
# how to reach the server as its superuser through the unix socket.
pg_layout() {
	PG_DATA=""
	ADMIN_SOCKET="" # empty: libpq's default socket directory, where Debian's clusters listen
	ADMIN_USER=""   # empty: the OS user that as_owner runs as
	PG_LOG=""
	if [ -n "${PULSE_PG_DATA:-}" ]; then
		PG_DATA=$PULSE_PG_DATA
	elif command -v pg_lsclusters >/dev/null && command -v pg_ctlcluster >/dev/null; then
		return 0
	elif is_root; then
		PG_DATA=/var/lib/pulse/postgres
	else
		PG_DATA=${XDG_STATE_HOME:-$HOME/.local/state}/pulse/postgres
	fi
	ADMIN_SOCKET=$PG_DATA
	PG_LOG=$PG_DATA/server.log
	if is_root; then
		ADMIN_USER=postgres
	fi
}

# admin_psql runs one SQL command as the server's superuser over the unix socket.
admin_psql() {
	local args=(-X -q -A -t -w -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1)
	[ -z "$ADMIN_SOCKET" ] || args+=(-h "$ADMIN_SOCKET")
	[ -z "$ADMIN_USER" ] || args+=(-U "$ADMIN_USER")
	as_owner "$PSQL" "${args[@]}" -c "$1"
}

# user_psql runs one SQL command as the current user over TCP, as the tests and `pulse dev` do.
user_psql() {
	PGCONNECT_TIMEOUT=5 "$PSQL" -X -q -A -t -w -v ON_ERROR_STOP=1 \
		-h "$HOST" -p "$PG_PORT" -U "$ME" -d postgres -c "$1"
}

# start_datadir starts the server of PG_DATA with pg_ctl, after initdb when it has none yet.
start_datadir() {
	if is_root && ! id postgres >/dev/null 2>&1; then
		die "no postgres OS user to run PostgreSQL as (PostgreSQL refuses to run as root)"
	fi
	if [ ! -f "$PG_DATA/PG_VERSION" ]; then
		say "creating a PostgreSQL data directory in $PG_DATA"
		mkdir -p "$PG_DATA"
		chmod 700 "$PG_DATA"
		if is_root; then
			chown postgres:postgres "$PG_DATA"
		fi
		local super=()
		[ -z "$ADMIN_USER" ] || super=(-U "$ADMIN_USER")
		as_owner "$PG_BIN/initdb" -D "$PG_DATA" "${super[@]}" -A trust -E UTF8 --locale=C \
			>"$PG_DATA.initdb.log" 2>&1 || {
			show_log "$PG_DATA.initdb.log"
			die "initdb $PG_DATA failed"
		}
		rm -f "$PG_DATA.initdb.log"
		cat >>"$PG_DATA/postgresql.conf" <<-EOF

			# Added by pulse scripts/datastores.sh.
			listen_addresses = '$HOST'
			unix_socket_directories = '$PG_DATA'
		EOF
	fi

	say "starting PostgreSQL in $PG_DATA on $HOST:$PG_PORT"
	as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" -w -t "$TIMEOUT" start \
		>/dev/null || {
		show_log "$PG_LOG"
		die "pg_ctl start $PG_DATA failed"
	}
}

# start_cluster starts the Debian cluster that listens on PG_PORT, creating one first when none
# does. Debian's clusters belong to the postgres OS user, so this needs root (or that user).
start_cluster() {
	local ver name port status log found=""
	while read -r ver name port status _ _ log; do
		if [ "$port" = "$PG_PORT" ]; then
			found="$ver $name $status $log"
			break
		fi
	done < <(pg_lsclusters -h 2>/dev/null)

	if [ -z "$found" ]; then
		ver=$(basename "$(dirname "$PG_BIN")")
		name=$PG_CLUSTER
		if [ -d "/etc/postgresql/$ver/$name" ]; then
			die "no PostgreSQL cluster uses port $PG_PORT, and cluster $ver/$name uses another:
$(pg_lsclusters)
set PULSE_PG_CLUSTER to a new cluster name, or change the port of $ver/$name"
		fi
		is_root || die "no PostgreSQL cluster uses port $PG_PORT; create one with:
    sudo pg_createcluster --port $PG_PORT $ver $name"
		say "creating PostgreSQL cluster $ver/$name on port $PG_PORT"
		pg_createcluster --port "$PG_PORT" "$ver" "$name" </dev/null >/dev/null ||
			die "pg_createcluster --port $PG_PORT $ver $name failed"
		status=down
		log=/var/log/postgresql/postgresql-$ver-$name.log
	else
		read -r ver name status log <<<"$found"
	fi
	PG_LOG=$log

	case $status in
	online*) return 0 ;; # starting up, or not listening on HOST: waiting tells which
	esac
	if ! is_root && [ "$ME" != postgres ]; then
		die "PostgreSQL cluster $ver/$name on port $PG_PORT is not running; start it with:
    sudo pg_ctlcluster $ver $name start"
	fi
	say "starting PostgreSQL cluster $ver/$name on port $PG_PORT"
	local redirect=()
	# Without systemd (containers, CI) pg_ctlcluster must not hand the start over to systemctl.
	[ -d /run/systemd/system ] || redirect=(--skip-systemctl-redirect)
	pg_ctlcluster "${redirect[@]}" "$ver" "$name" start </dev/null || {
		show_log "$PG_LOG"
		die "pg_ctlcluster $ver $name start failed"
	}
}

# allow_tcp_trust lets the current user connect from loopback without a password. Debian's
# default pg_hba.conf asks for one over TCP, and the local URLs carry none.
allow_tcp_trust() {
	local hba tmp
	hba=$(admin_psql "SHOW hba_file") || die "cannot read the path of pg_hba.conf"
	say "allowing $ME to connect from loopback without a password in $hba"
	tmp=$(mktemp)
	{
		echo "# Added by pulse scripts/datastores.sh: local development connects over TCP without a password."
		echo "host all $ME 127.0.0.1/32 trust"
		echo "host all $ME ::1/128 trust"
		cat "$hba"
	} >"$tmp"
	cat "$tmp" >"$hba" # keeps the file's owner and mode
	rm -f "$tmp"
	admin_psql "SELECT pg_reload_conf()" >/dev/null
}

# ensure_pg_role makes sure the current user can log in over TCP, as a superuser when the role
# has to be created.
ensure_pg_role() {
	local err
	err=$(user_psql "SELECT 1" 2>&1 >/dev/null) && return 0

	if ! is_root && [ "$ME" != postgres ]; then
		die "cannot connect to PostgreSQL at $HOST:$PG_PORT as $ME: $err
create a role and allow it to connect over TCP, e.g.:
    sudo -u postgres createuser --superuser $ME
and, if a password is asked for, add 'host all $ME 127.0.0.1/32 trust' to pg_hba.conf"
	fi

	local exists
	exists=$(admin_psql "SELECT 1 FROM pg_roles WHERE rolname = $(sql_literal "$ME")") ||
		die "cannot connect to PostgreSQL as its superuser to create role $ME (connecting as $ME: $err)"
	if [ "$exists" != 1 ]; then
		say "creating PostgreSQL superuser role $ME"
		admin_psql "CREATE ROLE $(sql_ident "$ME") LOGIN SUPERUSER" >/dev/null
	fi
	err=$(user_psql "SELECT 1" 2>&1 >/dev/null) && return 0

	case $err in
	*password* | *"no pg_hba.conf entry"*) allow_tcp_trust ;;
	*) die "cannot connect to PostgreSQL at $HOST:$PG_PORT as $ME: $err" ;;
	esac
	# The reload is asynchronous: give the server a moment to read the new file.
	local deadline=$((SECONDS + 10))
	until err=$(user_psql "SELECT 1" 2>&1 >/dev/null); do
		[ $SECONDS -lt $deadline ] || die "cannot connect to PostgreSQL at $HOST:$PG_PORT as $ME: $err"
		sleep 0.2
	done
}

# ensure_pg_databases creates the databases that are missing. One query both proves that the
# current user can connect and lists them, so a machine where all is well pays one connection.
ensure_pg_databases() {
	local list="" db have
	for db in "${DATABASES[@]}"; do list+=${list:+,}$(sql_literal "$db"); done
	if ! have=$(user_psql "SELECT datname FROM pg_database WHERE datname IN ($list)" 2>/dev/null); then
		ensure_pg_running
		ensure_pg_role
		have=$(user_psql "SELECT datname FROM pg_database WHERE datname IN ($list)") ||
			die "cannot list PostgreSQL databases"
	fi
	local options=""
	for db in "${DATABASES[@]}"; do
		grep -qxF "$db" <<<"$have" && continue
		if [ -z "$options" ]; then
			# A cluster made without a UTF-8 locale in the environment defaults to SQL_ASCII.
			options=" "
			if [ "$(user_psql "SELECT pg_encoding_to_char(encoding) FROM pg_database
				WHERE datname = 'template1'")" != UTF8 ]; then
				options=" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
			fi
		fi
		say "creating PostgreSQL database $db"
		user_psql "CREATE DATABASE $(sql_ident "$db")$options" >/dev/null ||
			die "cannot create database $db as $ME (the role needs CREATEDB)"
	done
}

ensure_pg_running() {
	local ready=0
	pg_ready || ready=$?
	case $ready in
	0) return 0 ;;
	1) wait_pg_ready "$PG_LOG" && return 0 ;; # up, but still starting
	esac
	if [ -n "$PG_DATA" ]; then
		start_datadir
	else
		start_cluster
	fi
	wait_pg_ready "$PG_LOG"
}

ensure_binaries
ensure_redis
pg_layout
ensure_pg_databases
