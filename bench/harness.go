package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/bench/proc"
	"github.com/pulse-knative/pulse/internal/privateserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/store"
)

// secret signs the webhooks of every run; the sink verifies each one.
var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("pulse-bench-webhook-signing-key!"))

// commands are the programs the bench builds, by name. A command whose main.go is missing
// (a function not written yet) is left out, and the scenarios that need it are skipped.
var commands = []struct{ name, pkg string }{
	{"ingest", "./functions/ingest"},
	{"deliver-high", "./functions/deliver-high"},
	{"deliver-low", "./functions/deliver-low"},
	{"cron", "./functions/cron"},
	{"metrics", "./functions/metrics"},
	{"stream-source", "./cmd/stream-source"},
}

// baselineCommands are programs the bench builds beside Pulse's that are not Pulse's: the
// River baseline's worker. They are left out of the binary sizes and start-up figures.
var baselineCommands = []struct{ name, pkg string }{
	{"riverworker", "./bench/riverworker"},
}

// buildFlags are ko.yaml's: the sizes reported are those of the images' binaries.
var buildFlags = []string{"-trimpath", "-ldflags=-s -w"}

// Harness holds what every scenario shares: the built programs, the datastores and a place
// for logs.
type Harness struct {
	opts Options
	log  io.Writer
	// root is the module's directory; work a temporary directory for binaries and logs.
	root, work string
	// plain holds the programs as ko builds them; profiled the same with the pprof listener
	// of bench/testdata/benchpprof.go added.
	plain, profiled string
	built           map[string]bool
	// buildErrors says why a command that exists was left out.
	buildErrors map[string]string
	// checkpointRefused is set once the server has refused a CHECKPOINT.
	checkpointRefused bool

	// pg and redis are the private servers the bench started, nil when it was given the
	// URL of a server (-database-url, -redis-url); dbURL and redisURL reach the servers used.
	pg       *privateserver.Postgres
	redis    *privateserver.Redis
	dbURL    string
	redisURL string
	dbName   string
	admin    *pgxpool.Pool
	rdb      *redis.Client
	runs     int
	// done are the runs finished so far, for scenarios whose rates derive from others'.
	done []Run
	// scenario is the name of the scenario running, which names its profiles' directory.
	scenario string
	// cleanups run at Close: scenarios whose setup outlives one run (the scrape tables).
	cleanups []func()
}

func newHarness(ctx context.Context, opts Options, log io.Writer) (*Harness, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	work, err := os.MkdirTemp("", "pulse-bench-")
	if err != nil {
		return nil, err
	}
	if opts.Out == "" {
		opts.Out = filepath.Join(root, "bench")
	}
	if opts.Profiles == "" {
		opts.Profiles = filepath.Join(root, "bench", "profiles")
	}
	h := &Harness{opts: opts, log: log, root: root, work: work, plain: filepath.Join(work, "bin"),
		profiled: filepath.Join(work, "bin-pprof"), built: map[string]bool{}, buildErrors: map[string]string{},
		dbURL: opts.DatabaseURL, redisURL: opts.RedisURL}
	if err := h.setUp(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// setUp builds the programs, starts the private servers that no URL replaces and connects
// to the datastores.
func (h *Harness) setUp(ctx context.Context) error {
	if err := h.build(ctx); err != nil {
		return err
	}
	if h.dbURL == "" {
		pg, err := privateserver.StartPostgres(ctx, privateserver.PostgresConfig{Database: "pulse_bench"})
		if err != nil {
			return fmt.Errorf("private PostgreSQL: %w", err)
		}
		h.pg, h.dbURL = pg, pg.URL()
		h.logf("started a private PostgreSQL cluster with stock settings: %s", h.dbURL)
	}
	if h.redisURL == "" {
		rs, err := privateserver.StartRedis(ctx)
		if err != nil {
			return fmt.Errorf("private Redis: %w", err)
		}
		h.redis, h.redisURL = rs, rs.URL()
		h.logf("started a private redis-server: %s", h.redisURL)
	}
	if err := h.openDatabase(ctx); err != nil {
		return err
	}
	ropts, err := redis.ParseURL(h.redisURL)
	if err != nil {
		return fmt.Errorf("parse Redis URL: %w", err)
	}
	h.rdb = redis.NewClient(ropts)
	if err := h.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping Redis: %w", err)
	}
	return nil
}

// Close removes the binaries and logs and closes the connections.
func (h *Harness) Close() {
	for _, c := range h.cleanups {
		c()
	}
	if h.admin != nil {
		h.admin.Close()
	}
	if h.rdb != nil {
		h.rdb.Close()
	}
	if h.pg != nil {
		if err := h.pg.Close(); err != nil {
			h.logf("%v", err)
		}
	}
	if h.redis != nil {
		h.redis.Close()
	}
	os.RemoveAll(h.work)
}

func (h *Harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "bench: "+format+"\n", args...)
}

// build compiles every command twice: as ko builds it, and with the pprof listener added
// through an overlay (the repository's files are not touched).
func (h *Harness) build(ctx context.Context) error {
	var pkgs []string
	overlay := map[string]string{}
	all := slices.Concat(commands, baselineCommands)
	for _, c := range all {
		dir := filepath.Join(h.root, c.pkg)
		if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
			continue
		}
		h.built[c.name] = true
		pkgs = append(pkgs, c.pkg)
		overlay[filepath.Join(dir, "zz_benchpprof.go")] = filepath.Join(h.root, "bench", "testdata", "benchpprof.go")
	}
	b, _ := json.Marshal(map[string]any{"Replace": overlay})
	overlayFile := filepath.Join(h.work, "overlay.json")
	if err := os.WriteFile(overlayFile, b, 0o644); err != nil {
		return err
	}
	start := time.Now()
	for _, dir := range []string{h.plain, h.profiled} {
		args := append([]string{"build", "-o", dir + "/"}, buildFlags...)
		if dir == h.profiled {
			args = append(args, "-overlay", overlayFile)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
		cmd.Dir = h.root
		if _, err := cmd.CombinedOutput(); err == nil {
			continue
		}
		// Some command does not build (someone is changing it): build them one by one and
		// leave out those that fail, with the reason, so that the others are measured.
		for _, c := range all {
			if !h.built[c.name] {
				continue
			}
			cmd := exec.CommandContext(ctx, "go", append(args, c.pkg)...)
			cmd.Dir = h.root
			if out, err := cmd.CombinedOutput(); err != nil {
				h.built[c.name] = false
				h.buildErrors[c.name] = fmt.Sprintf("%s does not build: %v: %s", c.pkg, err, lastLines(string(out), 3))
				h.logf("%s", h.buildErrors[c.name])
			}
		}
	}
	if !h.built["ingest"] {
		return errors.New(h.buildErrors["ingest"])
	}
	h.logf("built %s in %s", strings.Join(pkgs, " "), time.Since(start).Round(time.Millisecond))
	return nil
}

// openDatabase creates the bench database when it is missing and connects to it.
func (h *Harness) openDatabase(ctx context.Context) error {
	u, err := url.Parse(h.dbURL)
	if err != nil || u.Scheme == "" {
		return errors.New("the database URL must be a postgres:// URL")
	}
	h.dbName = strings.TrimPrefix(u.Path, "/")
	if h.dbName == "" {
		return errors.New("the database URL names no database")
	}
	pool, err := pgxpool.New(ctx, h.dbURL)
	if err == nil {
		err = pool.Ping(ctx)
	}
	var pgErr interface{ SQLState() string }
	if err != nil && errors.As(err, &pgErr) && pgErr.SQLState() == "3D000" { // invalid_catalog_name
		pool.Close()
		server := *u
		server.Path = "/postgres"
		conn, cerr := pgx.Connect(ctx, server.String())
		if cerr != nil {
			return fmt.Errorf("connect to create database %s: %w", h.dbName, cerr)
		}
		_, cerr = conn.Exec(ctx, "create database "+pgx.Identifier{h.dbName}.Sanitize())
		conn.Close(ctx)
		if cerr != nil {
			return fmt.Errorf("create database %s: %w", h.dbName, cerr)
		}
		h.logf("created database %s", h.dbName)
		pool, err = pgxpool.New(ctx, h.dbURL)
		if err == nil {
			err = pool.Ping(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("connect to the bench database: %w", err)
	}
	h.admin = pool
	return nil
}

// runEnv is one run's corner of the datastores: a schema and a Redis key prefix.
type runEnv struct {
	h      *Harness
	schema string
	// dbURL reaches the schema (search_path), prefix the run's Redis keys.
	dbURL, prefix string
	pool          *pgxpool.Pool
	procs         []*proc.Process
}

// newEnv creates a schema with Pulse's tables and a fresh Redis prefix.
func (h *Harness) newEnv(ctx context.Context) (*runEnv, error) {
	h.runs++
	tag := fmt.Sprintf("%d_%s", h.runs, randomHex(3))
	e := &runEnv{h: h, schema: "bench_" + tag, prefix: "pulse-bench-" + strings.ReplaceAll(tag, "_", "-")}
	if _, err := h.admin.Exec(ctx, "create schema "+e.schema); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	e.dbURL = withSearchPath(h.dbURL, e.schema)
	st, err := store.Open(ctx, config.Database{URL: e.dbURL, MaxConns: 16})
	if err != nil {
		e.close()
		return nil, err
	}
	e.pool = st.Pool()
	if err := st.Migrate(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return e, nil
}

// newLoadEnv is newEnv with Options.History finished notifications already in the table and
// its statistics taken, as in an installation that has been running: the planner then sees
// the table a deployment has rather than an empty one.
func (h *Harness) newLoadEnv(ctx context.Context) (*runEnv, error) {
	e, err := h.newEnv(ctx)
	if err != nil || h.opts.History == 0 {
		return e, err
	}
	if err := e.fill(ctx, h.opts.History); err != nil {
		e.close()
		return nil, err
	}
	// The fill's WAL would otherwise bring a checkpoint, and its full-page writes, into the
	// measured window of some runs and not others. CHECKPOINT needs a superuser or the
	// pg_checkpoint role; without them the run goes on as it is.
	if _, err := h.admin.Exec(ctx, "checkpoint"); err != nil && !h.checkpointRefused {
		h.checkpointRefused = true
		h.logf("no checkpoint after the history fill (%v); figures may vary more between runs", err)
	}
	return e, nil
}

// close stops the run's processes, drops its schema and deletes its Redis keys.
func (e *runEnv) close() {
	for _, p := range e.procs {
		p.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if e.pool != nil {
		e.pool.Close()
	}
	if _, err := e.h.admin.Exec(ctx, "drop schema if exists "+e.schema+" cascade"); err != nil {
		e.h.logf("drop schema %s: %v", e.schema, err)
	}
	e.h.deleteKeys(ctx, "*"+e.prefix+"*")
}

func (h *Harness) deleteKeys(ctx context.Context, pattern string) {
	iter := h.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := h.rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
			h.logf("delete Redis keys %s: %v", pattern, err)
			return
		}
		keys = keys[n:]
	}
}

// functionEnv is the environment every Pulse process of a run gets: the process's own
// environment without Pulse's settings, then the run's.
func (e *runEnv) functionEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PULSE_") || k == "K_SINK" || k == "PORT" {
			continue
		}
		env = append(env, kv)
	}
	vars := map[string]string{
		"PULSE_DATABASE_URL":          e.dbURL,
		"PULSE_DATABASE_MIGRATE":      "true",
		"PULSE_REDIS_URL":             e.h.redisURL,
		"PULSE_REDIS_PREFIX":          e.prefix,
		"PULSE_LOG_LEVEL":             e.h.opts.LogLevel,
		"PULSE_SHUTDOWN_TIMEOUT":      "5s",
		"PULSE_INGEST_AUTH":           "none",
		"PULSE_WEBHOOK_SECRET":        secret,
		"PULSE_WEBHOOK_ALLOW_PRIVATE": "true",
	}
	for k, v := range e.h.opts.Settings {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// start starts the command named command as the process name, ready when it answers
// /readyz (HTTP functions) or at once (the stream source). A profiled process gets the pprof
// listener.
func (e *runEnv) start(ctx context.Context, name, command string, extra map[string]string, profiled bool) (*proc.Process, error) {
	if err := e.h.needBuilt(command); err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for k, v := range extra {
		vars[k] = v
	}
	spec := proc.Spec{Name: name, LogDir: e.h.work}
	bin := e.h.plain
	if profiled {
		bin = e.h.profiled
		pprofPort, err := privateserver.FreePort()
		if err != nil {
			return nil, err
		}
		spec.Pprof = fmt.Sprintf("127.0.0.1:%d", pprofPort)
		vars["PULSE_BENCH_PPROF_ADDR"] = spec.Pprof
	}
	spec.Path = filepath.Join(bin, command)
	if command != "stream-source" {
		port, err := privateserver.FreePort()
		if err != nil {
			return nil, err
		}
		spec.Port = port
		spec.Ready = "/readyz"
		vars["PORT"] = strconv.Itoa(spec.Port)
	}
	spec.Env = append(e.functionEnv(vars), "GODEBUG=gctrace=1") // heap figures; see gcTrace
	p, err := proc.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// needBuilt says why the command named command cannot be started, or nil when it was built.
func (h *Harness) needBuilt(command string) error {
	if h.built[command] {
		return nil
	}
	if why := h.buildErrors[command]; why != "" {
		return errors.New(why)
	}
	return fmt.Errorf("%w: %s", errNotBuilt, command)
}

// errNotBuilt means a scenario needs a command that does not exist (yet) in the repository.
var errNotBuilt = errors.New("not in the repository")

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact returns a URL without its password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// withSearchPath returns the connection URL base with its search_path set to schema.
func withSearchPath(base, schema string) string {
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
