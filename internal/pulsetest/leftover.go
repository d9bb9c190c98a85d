package pulsetest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// A test run names its schemas and key prefixes after the process that creates them: the
// host, the pid and the process's start, then a random part. A run killed before its cleanups
// leaves them behind; the next run to use the same server removes them at its start, when
// their process is gone or when they are older than leftoverAge. Names of a process still
// running (go test runs packages concurrently, engineers run several at once) are kept.
const (
	schemaPrefix = "pulse_test_"
	keyPrefix    = "test-"
)

// leftoverAge is how old a name must be to be removed whatever its process: older than any
// test binary's timeout (make test gives 30 minutes), and it covers pids reused by another
// process and names created on another host.
const leftoverAge = time.Hour

var (
	// host tells this machine's names from another's that share the server: only here can
	// the pid be checked.
	host = func() string {
		name, _ := os.Hostname()
		h := fnv.New32a()
		h.Write([]byte(name))
		return fmt.Sprintf("%08x", h.Sum32())
	}()
	started = time.Now()
	// owner is this process's part of every name.
	owner = fmt.Sprintf("%s_%d_%d", host, os.Getpid(), started.Unix())

	schemaName = regexp.MustCompile(`^` + schemaPrefix + `([0-9a-f]{8})_(\d+)_(\d+)_[0-9a-f]+$`)
	keyName    = regexp.MustCompile(`^\{` + keyPrefix + `([0-9a-f]{8})_(\d+)_(\d+)_[0-9a-f]+\}`)
)

// ownedName returns a fresh name under prefix that carries this process's part.
func ownedName(prefix string) string { return Name(prefix + owner + "_") }

// leftover reports whether the host, pid and start parsed from a name mark it as left
// behind by a run that is over.
func leftover(nameHost, pid, unix string, now time.Time) bool {
	sec, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		return false
	}
	if now.Sub(time.Unix(sec, 0)) > leftoverAge {
		return true
	}
	if nameHost != host {
		return false
	}
	p, err := strconv.Atoi(pid)
	if err != nil || p <= 0 {
		return false
	}
	err = syscall.Kill(p, 0)
	return errors.Is(err, syscall.ESRCH)
}

// swept holds the servers swept by this process, by connection string or URL: once is enough.
var swept sync.Map

// sweepSchemas drops the schemas of finished runs on the PostgreSQL at base, once per process.
// It never fails a test: a schema it cannot drop is tried again by the next run.
func sweepSchemas(ctx context.Context, conn *pgx.Conn, base string) {
	if _, done := swept.LoadOrStore("postgres "+base, true); !done {
		dropLeftoverSchemas(ctx, conn, time.Now())
	}
}

// dropLeftoverSchemas drops the schemas of finished runs as of now.
func dropLeftoverSchemas(ctx context.Context, conn *pgx.Conn, now time.Time) {
	rows, err := conn.Query(ctx, "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", schemaPrefix+"%")
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		m := schemaName.FindStringSubmatch(name)
		if m == nil || !leftover(m[1], m[2], m[3], now) {
			continue
		}
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	}
}

// sweepKeys deletes the keys of finished runs on the Redis at redisURL, once per process.
func sweepKeys(ctx context.Context, client *redis.Client, redisURL string) {
	if _, done := swept.LoadOrStore("redis "+redisURL, true); !done {
		deleteLeftoverKeys(ctx, client, time.Now())
	}
}

// deleteLeftoverKeys deletes the keys of finished runs as of now.
func deleteLeftoverKeys(ctx context.Context, client *redis.Client, now time.Time) {
	iter := client.Scan(ctx, 0, "{"+keyPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		m := keyName.FindStringSubmatch(iter.Val())
		if m != nil && leftover(m[1], m[2], m[3], now) {
			client.Unlink(ctx, iter.Val())
		}
	}
}
