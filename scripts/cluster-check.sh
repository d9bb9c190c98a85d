#!/usr/bin/env bash
# make cluster-check: apply config/ to a real Kubernetes control plane with Knative Serving and
# Eventing's own webhooks and controllers, and check what they made of it. No containers: etcd,
# kube-apiserver and kube-controller-manager run as processes, each Knative webhook and
# controller in a network namespace of its own. Needs root (network namespaces), Go, openssl,
# curl and Debian's etcd-server (installed when missing). docs/deploy.md says what it proves.
#
#   scripts/cluster-check.sh [--if-built] [CONFIG_DIR]   CONFIG_DIR defaults to config/ (as `ko apply -f`)
#
# --if-built: do nothing (and succeed) unless the build cache is complete and this runs as root;
# this is how CI runs it, so that a machine without the cache does not spend half an hour building.
#
# The first run builds the binaries into the cache (25-40 minutes on two busy cores); later
# runs take about a minute. CLUSTER_CHECK_CACHE overrides the cache directory.
set -euo pipefail

K8S_VERSION=v1.35.4
KNATIVE_VERSION=v0.50.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IF_BUILT=0
if [[ ${1:-} == --if-built ]]; then
	IF_BUILT=1
	shift
fi
CONFIG_DIR=$(realpath "${1:-$ROOT/config}")
CACHE=${CLUSTER_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulse-cluster/k8s-$K8S_VERSION-knative-$KNATIVE_VERSION}
BIN=$CACHE/bin
KNATIVE_YAML=$CACHE/yaml

# The control plane listens on an address of its own on the loopback interface; each Knative
# process gets a network namespace joined to the host by a veth pair, 10.97.N.2 inside.
HOST_IP=10.97.0.1
API=https://$HOST_IP:6443
SERVICE_CIDR=10.96.0.0/16
SERVING_WEBHOOK_IP=10.96.100.1
EVENTING_WEBHOOK_IP=10.96.100.2
NETNS_PREFIX=pulse-cc

log() { printf '%s cluster-check: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# --- build (once per version set) -------------------------------------------------------------

# go_build MODULE_DIR OUTPUT PACKAGE [LDFLAGS]: a static, niced, one-package-at-a-time build,
# written under a temporary name so that an interrupted build never leaves a binary behind.
go_build() {
	local dir=$1 out=$2 pkg=$3 ldflags=${4:-}
	[[ -x $out ]] && return
	log "building $(basename "$out") from $pkg (cold: many minutes)"
	(cd "$dir" && CGO_ENABLED=0 GOFLAGS="-p=1 -buildvcs=false" nice -n 19 \
		go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
	mv "$out.tmp" "$out"
}

build() {
	mkdir -p "$BIN"
	# Knative refuses an API server without a real version, and a build from the module zip
	# has no git to take one from.
	local v=k8s.io/component-base/version
	local kube_ldflags="-X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=35
		-X $v.gitCommit=0000000000000000000000000000000000000000 -X $v.gitTreeState=clean
		-X $v.buildDate=2026-04-15T18:01:22Z"
	local c
	for c in kube-apiserver kube-controller-manager; do
		go_build "$ROOT/config/cluster/kube" "$BIN/$c" "k8s.io/kubernetes/cmd/$c" "$kube_ldflags"
	done
	for c in serving eventing; do
		go_build "$ROOT/config/cluster/knative" "$BIN/$c-webhook" "knative.dev/$c/cmd/webhook"
		go_build "$ROOT/config/cluster/knative" "$BIN/$c-controller" "knative.dev/$c/cmd/controller"
	done
	knative_yaml
	# .ci/run looks for this stamp: only a complete cache makes a run short enough for CI.
	touch "$CACHE/built"
}

# knative_yaml copies the release manifests Pulse needs out of the Knative module zips: the
# CRDs, ConfigMaps, roles and webhook configurations (serving's CRDs of knative.dev/networking
# and knative.dev/caching are symlinks in its repository, so they come from those modules).
knative_yaml() {
	[[ -d $KNATIVE_YAML ]] && return
	local tmp=$KNATIVE_YAML.tmp dir m
	rm -rf "$tmp"
	for m in serving eventing networking caching; do
		dir=$(cd "$ROOT/config/cluster/knative" && go list -m -f '{{.Dir}}' "knative.dev/$m")
		[[ -n $dir ]] || dir=$(cd "$ROOT/config/cluster/knative" && go mod download -json "knative.dev/$m" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
		mkdir -p "$tmp/$m"
		cp -r "$dir/config/." "$tmp/$m/"
	done
	chmod -R u+w "$tmp"
	mv "$tmp" "$KNATIVE_YAML"
}

# --- the control plane --------------------------------------------------------------------------

WORK=
PIDS=()
NETNS=()

cleanup() {
	local rc=$? i alive
	# Knative's webhooks drain for tens of seconds on SIGTERM: give everything five seconds,
	# then kill what is left. The newest first, so that etcd goes last.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
	done
	for _ in {1..10}; do
		alive=0
		for i in "${PIDS[@]}"; do
			kill -0 "$i" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.5
	done
	for i in "${PIDS[@]}"; do
		kill -KILL "$i" 2>/dev/null || true
		wait "$i" 2>/dev/null || true
	done
	# Deleting a namespace deletes its veth pair, and the host route through it.
	for i in "${NETNS[@]}"; do
		ip netns del "$i" 2>/dev/null || true
	done
	ip route del "$SERVING_WEBHOOK_IP/32" 2>/dev/null || true
	ip route del "$EVENTING_WEBHOOK_IP/32" 2>/dev/null || true
	ip addr del "$HOST_IP/32" dev lo 2>/dev/null || true
	if [[ -n $WORK ]]; then
		if ((rc == 0)); then
			rm -rf "$WORK"
		else
			log "failed; logs kept in $WORK/log"
		fi
	fi
	exit "$rc"
}

# start NAME CMD...: run a process in the background, its output in $WORK/log/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$WORK/log/$name.log" 2>&1 &
	PIDS+=($!)
}

# netns N NAME [CLUSTER_IP]: a network namespace joined to the host, optionally holding a
# Service's ClusterIP with a host route to it, so that the API server reaches a webhook exactly
# where it resolves the webhook's Service.
netns() {
	local n=$1 name=$NETNS_PREFIX-$2 ip=${3:-} veth=pcc$1
	ip netns add "$name"
	NETNS+=("$name")
	ip link add "${veth}h" type veth peer name "${veth}n"
	ip link set "${veth}n" netns "$name"
	ip addr add "10.97.$n.1/24" dev "${veth}h"
	ip link set "${veth}h" up
	ip -n "$name" addr add "10.97.$n.2/24" dev "${veth}n"
	ip -n "$name" link set lo up
	ip -n "$name" link set "${veth}n" up
	ip -n "$name" route add default via "10.97.$n.1"
	if [[ -n $ip ]]; then
		ip -n "$name" addr add "$ip/32" dev "${veth}n"
		ip route add "$ip/32" via "10.97.$n.2"
	fi
}

certs() {
	local d=$WORK/pki
	mkdir -p "$d"
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 "${ec[@]}" -days 2 -subj /CN=pulse-cluster-check-ca \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	# sign NAME SUBJECT EXTENSIONS
	sign() {
		openssl req -new "${ec[@]}" -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
		openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
			-days 2 -extfile <(printf '%s\n' "$3") -out "$d/$1.crt" 2>/dev/null
	}
	sign apiserver /CN=kube-apiserver "$(printf '%s\n' \
		"subjectAltName=IP:$HOST_IP,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
		"extendedKeyUsage=serverAuth")"
	sign admin "/O=system:masters/CN=pulse-cluster-check" "extendedKeyUsage=clientAuth"
	openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
	openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
	cat >"$WORK/kubeconfig" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: cluster-check
		  cluster: {server: "$API", certificate-authority: "$d/ca.crt"}
		users:
		- name: admin
		  user: {client-certificate: "$d/admin.crt", client-key: "$d/admin.key"}
		contexts:
		- name: cluster-check
		  context: {cluster: cluster-check, user: admin}
		current-context: cluster-check
	EOF
}

# wait_for WHAT SECONDS CMD...: retry CMD each second, failing with the logs when it never passes
# or a started process has died.
wait_for() {
	local what=$1 secs=$2 pid i
	shift 2
	for ((i = 0; i < secs; i++)); do
		"$@" >/dev/null 2>&1 && return
		for pid in "${PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null || die "a process died while waiting for $what: $(tail -n 5 "$WORK"/log/*.log)"
		done
		sleep 1
	done
	die "$what not ready after ${secs}s; logs in $WORK/log"
}

# api PATH: GET from the API server as the admin, failing on an error status.
api() {
	local p=$WORK/pki
	curl -fsS --cacert "$p/ca.crt" --cert "$p/admin.crt" --key "$p/admin.key" "$API$1"
}

control_plane() {
	local p=$WORK/pki
	ip addr add "$HOST_IP/32" dev lo
	start etcd etcd --name cluster-check --data-dir "$WORK/etcd" \
		--listen-client-urls "http://$HOST_IP:2379" --advertise-client-urls "http://$HOST_IP:2379" \
		--listen-peer-urls "http://$HOST_IP:2380" --initial-advertise-peer-urls "http://$HOST_IP:2380" \
		--initial-cluster "cluster-check=http://$HOST_IP:2380"
	wait_for etcd 60 curl -fsS "http://$HOST_IP:2379/health"
	start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://$HOST_IP:2379" \
		--bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port 6443 \
		--tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
		--client-ca-file "$p/ca.crt" --authorization-mode RBAC --profiling=false \
		--service-account-issuer https://kubernetes.default.svc \
		--service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
		--service-cluster-ip-range "$SERVICE_CIDR"
	wait_for kube-apiserver 120 api /readyz
	start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$WORK/kubeconfig" \
		--leader-elect=false --secure-port 0 --use-service-account-credentials=false \
		--service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
		--service-cluster-ip-range "$SERVICE_CIDR"
}

# --- Knative ---------------------------------------------------------------------------------

# knative NETNS_NAME BINARY NAMESPACE [VAR=VALUE...]: a Knative webhook or controller, outside
# any pod, with the admin kubeconfig.
knative() {
	local name=$1 bin=$2 ns=$3
	shift 3
	start "$name" ip netns exec "$NETNS_PREFIX-$name" env KUBECONFIG="$WORK/kubeconfig" \
		SYSTEM_NAMESPACE="$ns" POD_NAME="$name" CONFIG_LOGGING_NAME=config-logging \
		CONFIG_OBSERVABILITY_NAME=config-observability "$@" "$BIN/$bin"
}

knative_up() {
	local s=$KNATIVE_YAML/serving/core e=$KNATIVE_YAML/eventing/core n=$KNATIVE_YAML/networking
	# The webhooks' Services, pinned to the ClusterIPs their network namespaces hold. There is
	# no kube-proxy: the API server dials the ClusterIP on the Service's port, so the webhooks
	# listen on 443 themselves.
	cat >"$WORK/webhook-services.yaml" <<-EOF
		apiVersion: v1
		kind: Service
		metadata: {name: webhook, namespace: knative-serving}
		spec:
		  clusterIP: $SERVING_WEBHOOK_IP
		  ports: [{name: https-webhook, port: 443, targetPort: 8443}]
		  selector: {app: webhook, role: webhook}
		---
		apiVersion: v1
		kind: Service
		metadata: {name: eventing-webhook, namespace: knative-eventing}
		spec:
		  clusterIP: $EVENTING_WEBHOOK_IP
		  ports: [{name: https-webhook, port: 443, targetPort: 8443}]
		  selector: {app: eventing-webhook, role: eventing-webhook}
	EOF
	log "applying Knative Serving and Eventing $KNATIVE_VERSION: namespaces, CRDs, settings, webhook configurations"
	"$CC" apply "$s/100-namespace.yaml" "$e/100-namespace.yaml"
	"$CC" apply "$s/300-resources" "$n/certificate.yaml" "$n/ingress.yaml" "$n/serverlessservice.yaml" \
		"$n/domain-claim.yaml" "$KNATIVE_YAML/caching/image.yaml" "$e/resources"
	"$CC" apply "$s/200-serviceaccount.yaml" "$s/200-roles" "$s/configmaps" "$n/config-network.yaml" \
		"$e"/200-*.yaml "$e/roles" "$e/configmaps" "$WORK/webhook-services.yaml" "$s/webhooks" "$e/webhooks"

	netns 1 serving-webhook "$SERVING_WEBHOOK_IP"
	netns 2 eventing-webhook "$EVENTING_WEBHOOK_IP"
	netns 3 serving-controller
	netns 4 eventing-controller
	knative serving-webhook serving-webhook knative-serving WEBHOOK_NAME=webhook WEBHOOK_PORT=443
	knative eventing-webhook eventing-webhook knative-eventing WEBHOOK_NAME=eventing-webhook \
		WEBHOOK_PORT=443 SINK_BINDING_SELECTION_MODE=exclusion METRICS_DOMAIN=knative.dev/eventing
	log "waiting for the webhooks"
	"$CC" webhooks -timeout 2m knative-serving knative-eventing
	wait_for "the Serving webhook" 60 curl -ks "https://$SERVING_WEBHOOK_IP/"
	wait_for "the Eventing webhook" 60 curl -ks "https://$EVENTING_WEBHOOK_IP/"

	# The images the Eventing controller puts into what it makes for source and sink kinds
	# Pulse does not use; in a release they come from ConfigMaps. Fixed names do: nothing pulls.
	local images=() v
	for v in APISERVER_RA_IMAGE=apiserver_receive_adapter AUTH_PROXY_IMAGE=auth_proxy \
		EVENT_TRANSFORM_JSONATA_IMAGE=transform-jsonata INTEGRATION_SOURCE_TIMER_IMAGE=timer-source \
		INTEGRATION_SOURCE_AWS_S3_IMAGE=aws-s3-source INTEGRATION_SOURCE_AWS_SQS_IMAGE=aws-sqs-source \
		INTEGRATION_SOURCE_AWS_DDB_STREAMS_IMAGE=aws-ddb-streams-source \
		INTEGRATION_SINK_LOG_IMAGE=log-sink INTEGRATION_SINK_AWS_S3_IMAGE=aws-s3-sink \
		INTEGRATION_SINK_AWS_SQS_IMAGE=aws-sqs-sink INTEGRATION_SINK_AWS_SNS_IMAGE=aws-sns-sink; do
		images+=("${v%%=*}=$("$CC" image "knative.dev/eventing/cmd/${v#*=}")")
	done
	knative serving-controller serving-controller knative-serving
	knative eventing-controller eventing-controller knative-eventing METRICS_DOMAIN=knative.dev/eventing "${images[@]}"
	# What the release applies through the webhooks: serving's internal Certificate and image
	# cache, and the PingSource adapter's Deployment (scaled up by the controller when needed).
	"$CC" apply "$s/300-knativecertificate.yaml" "$s/999-cache.yaml" "$e/deployments/pingsource-mt-adapter.yaml"
}

main() {
	if ((IF_BUILT)) && { [[ ! -f $CACHE/built ]] || [[ $(id -u) != 0 ]]; }; then
		log "skipped: it runs only as root with a complete build cache in $CACHE (make cluster-check builds it)"
		return
	fi
	[[ $(id -u) == 0 ]] || die "needs root: it makes network namespaces and binds addresses"
	command -v etcd >/dev/null || {
		log "installing Debian's etcd-server"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
	}
	build
	WORK=$(mktemp -d /tmp/pulse-cluster-check.XXXXXX)
	mkdir -p "$WORK/log"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	export KUBECONFIG=$WORK/kubeconfig
	CC=$WORK/cluster-check
	(cd "$ROOT/config/validate" && GOFLAGS=-p=1 nice -n 19 go build -o "$CC" ./cmd/cluster-check)

	certs
	log "starting etcd, kube-apiserver $K8S_VERSION and kube-controller-manager"
	control_plane
	knative_up

	# As on a fresh cluster (docs/deploy.md): the namespace first, and its default
	# ServiceAccount made, which the Serving webhook's dry run of each pod needs.
	log "applying $CONFIG_DIR"
	"$CC" apply -strict "$CONFIG_DIR/00-namespace.yaml"
	wait_for "the pulse namespace's default ServiceAccount" 60 api /api/v1/namespaces/pulse/serviceaccounts/default
	"$CC" apply -strict "$CONFIG_DIR"
	log "checking what Knative reconciled"
	"$CC" check -timeout 3m "$CONFIG_DIR"
	log "passed"
}

main "$@"
