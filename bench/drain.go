package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/bench/proc"
	"github.com/pulse-knative/pulse/bench/riverpeer"
	"github.com/pulse-knative/pulse/internal/privateserver"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// celeryPackages are Debian's packages the old stack's worker needs.
var celeryPackages = []string{"python3-celery", "python3-redis", "python3-psycopg2", "python3-requests"}

// drainScenarios are the drain runs; skip says why the Celery runs cannot happen, if so.
func (h *Harness) drainScenarios(skip string) []scenario {
	c := h.opts.DrainConcurrency
	var out []scenario
	for _, d := range h.opts.SinkDelays {
		celery := "drain-celery-sink-" + durationName(d)
		out = append(out, scenario{
			Name: celery, Group: "Old stack: drain a pre-filled queue",
			Title: fmt.Sprintf("Celery worker (prefork, concurrency %d, Redis broker): load row, POST, UPDATE; sink after %s", c, d),
			Unit:  "delivered/s", skip: skip,
			run: func(ctx context.Context, rep int, _ bool) (Run, error) {
				return h.runDrain(ctx, d, drainCelery, false)
			},
		})
		out = append(out, scenario{
			Name: "drain-river-sink-" + durationName(d), Group: "Old stack: drain a pre-filled queue", Baseline: celery,
			Title: fmt.Sprintf("River %s worker (MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s as River's own benchmark, pgx pool of %d, otherwise River's defaults; pgx, net/http keep-alive): load row, POST, UPDATE; sink after %s",
				riverVersion, c, riverpeer.FetchCooldown, riverpeer.FetchPollInterval, riverpeer.PoolConns(c), d),
			Unit: "delivered/s",
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				return h.runDrain(ctx, d, drainRiver, profile)
			},
		})
		out = append(out, scenario{
			Name: "drain-pulse-sink-" + durationName(d), Group: "Old stack: drain a pre-filled queue", Baseline: celery,
			Title: fmt.Sprintf("Pulse stream-source (concurrency %d) → deliver-high: claim, POST, record; sink after %s", c, d),
			Unit:  "delivered/s",
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				return h.runDrain(ctx, d, drainPulse, profile)
			},
		})
	}
	return out
}

// riverVersion is the River release the River baseline is built with (go.mod).
const riverVersion = "v0.51.2"

// drainConsumer is what drains the queue in a drain run.
type drainConsumer int

const (
	// drainCelery is the old stack's Celery worker on a Redis list.
	drainCelery drainConsumer = iota
	// drainRiver is a River worker on River's job table.
	drainRiver
	// drainPulse is Pulse's stream source and deliver-high on the high stream.
	drainPulse
)

// celeryMissing installs the old stack's packages when it can (as root, with apt-get) and
// returns why the Celery runs cannot happen, or "" when they can.
func (h *Harness) celeryMissing() string {
	check := func() error {
		return exec.Command(h.opts.Python, "-c", "import celery, redis, psycopg2, requests").Run()
	}
	if check() == nil {
		return ""
	}
	if !h.opts.Install || os.Geteuid() != 0 {
		return fmt.Sprintf("%s cannot import celery, redis, psycopg2 and requests; install them with: sudo apt-get install -y %s",
			h.opts.Python, strings.Join(celeryPackages, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "no Celery for " + h.opts.Python + " and no apt-get to install it"
	}
	h.logf("installing %s with apt-get", strings.Join(celeryPackages, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, celeryPackages...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Sprintf("apt-get %s failed: %v\n%s", args[0], err, lastLines(string(out), 5))
		}
	}
	if err := check(); err != nil {
		return fmt.Sprintf("%s still cannot import Celery after apt-get install: %v", h.opts.Python, err)
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// prefill stores n queued webhook notifications to sinkURL, as ingest would have, and
// returns their ids.
func prefill(ctx context.Context, e *runEnv, n int, sinkURL string) ([]string, error) {
	ids := make([]string, 0, n)
	now := time.Now()
	for first := 0; first < n; first += 1000 {
		k := min(1000, n-first)
		uids, eventIDs, datas := make([]uuid.UUID, k), make([]string, k), make([]string, k)
		for j := range k {
			uids[j] = uuid.Must(uuid.NewV7())
			eventIDs[j] = "ev-" + strconv.Itoa(first+j)
			datas[j] = fmt.Sprintf(`{"n":%d}`, first+j)
			ids = append(ids, uids[j].String())
		}
		if _, err := e.pool.Exec(ctx, naiveBatchInsert, uids, benchSource, sinkURL, now, eventIDs, datas); err != nil {
			return nil, fmt.Errorf("prefill notifications: %w", err)
		}
	}
	return ids, nil
}

// runDrain fills a queue with N notifications, starts the consumer and measures from its
// first delivery to its last: Pulse's stream source and deliver-high, a Celery worker or a
// River worker.
func (h *Harness) runDrain(ctx context.Context, delay time.Duration, consumer drainConsumer, profile bool) (Run, error) {
	n := h.opts.DrainN
	r := Run{N: n}
	e, s, err := h.newSinkEnv(ctx, func() (*sink, error) { return startSink(delay) })
	if err != nil {
		return r, err
	}
	defer e.close()
	defer s.Close()
	ids, err := prefill(ctx, e, n, s.To)
	if err != nil {
		return r, err
	}
	var procs []*proc.Process
	var consumerStart time.Time
	switch consumer {
	case drainPulse:
		if err := h.fillStream(ctx, e, ids); err != nil {
			return r, err
		}
		deliver, source, err := e.startDeliverPath(ctx, nil, h.opts.DrainConcurrency, profile)
		if err != nil {
			return r, err
		}
		consumerStart = source.Started()
		procs = []*proc.Process{deliver, source}
	case drainRiver:
		if err := riverpeer.Migrate(ctx, e.pool, e.schema); err != nil {
			return r, err
		}
		if err := riverpeer.Enqueue(ctx, e.pool, e.schema, ids); err != nil {
			return r, err
		}
		worker, err := h.startRiver(ctx, e, profile)
		if err != nil {
			return r, err
		}
		consumerStart = worker.Started()
		procs = []*proc.Process{worker}
	default:
		queueKey := "{" + e.prefix + "}:celery:high_priority"
		if err := h.fillCeleryQueue(ctx, queueKey, ids); err != nil {
			return r, err
		}
		worker, err := h.startCelery(ctx, e, queueKey)
		if err != nil {
			return r, err
		}
		consumerStart = worker.Started()
		procs = []*proc.Process{worker}
	}
	// The window opens at the first delivery: the consumers' start-up (seconds for Python and
	// Celery's imports) is not counted against their rate.
	firstCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = s.waitReceived(firstCtx, 1)
	cancel()
	if err != nil {
		return r, fmt.Errorf("no first delivery: %w\n%s", err, procs[len(procs)-1].Tail(20))
	}
	w, err := h.begin(ctx, procs, profile)
	if err != nil {
		return r, err
	}
	waitErr := s.waitReceived(ctx, n)
	if waitErr == nil {
		waitErr = waitFinished(ctx, e, n)
	}
	m := w.end(context.WithoutCancel(ctx), n)
	r.absorb(m)
	if waitErr != nil {
		r.Notes = append(r.Notes, waitErr.Error())
	}

	var delivered int
	var first, last time.Time
	err = e.pool.QueryRow(context.WithoutCancel(ctx), `select count(*), coalesce(min(delivered_at), now()), coalesce(max(delivered_at), now())
		from notifications where status = 'delivered' and source <> '`+fillSource+`'`).Scan(&delivered, &first, &last)
	if err != nil {
		return r, errors.Join(waitErr, fmt.Errorf("count deliveries: %w", err))
	}
	r.Missing = n - delivered
	r.Errors = r.Missing
	if d := last.Sub(first).Seconds(); d > 0 && delivered > 1 {
		r.Throughput = float64(delivered-1) / d
	}
	if d := last.Sub(consumerStart).Seconds(); d > 0 {
		r.extra("from_consumer_start_per_s", float64(delivered)/d)
	}
	total, distinct, invalid := s.Stats()
	r.Duplicates = total - distinct
	r.Errors += invalid
	if consumer == drainPulse {
		lat, err := latencies(context.WithoutCancel(ctx), e, "delivered_at - sending_at")
		if err == nil {
			r.Latency = lat
			r.Notes = append(r.Notes, "latency: sending_at to delivered_at (webhook and record) per notification")
		}
	}
	return r, nil
}

// fillStream adds one dispatch entry per id to the high stream, as ingest does.
func (h *Harness) fillStream(ctx context.Context, e *runEnv, ids []string) error {
	stream := queue.NewKeys(e.prefix).Stream("high")
	at := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for first := 0; first < len(ids); first += 1000 {
		pipe := h.rdb.Pipeline()
		for _, id := range ids[first:min(first+1000, len(ids))] {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream,
				Values: []string{queue.FieldNotificationID, id, queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, at}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("fill stream: %w", err)
		}
	}
	return nil
}

// fillCeleryQueue pushes one task message per id to the Redis list a Celery worker consumes,
// in the format Celery 5's task protocol 2 and kombu's Redis transport use (the same bytes
// apply_async would push).
func (h *Harness) fillCeleryQueue(ctx context.Context, queueKey string, ids []string) error {
	for first := 0; first < len(ids); first += 1000 {
		pipe := h.rdb.Pipeline()
		for _, id := range ids[first:min(first+1000, len(ids))] {
			msg, err := celeryMessage(queueKey, id)
			if err != nil {
				return err
			}
			pipe.LPush(ctx, queueKey, msg)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("fill Celery queue: %w", err)
		}
	}
	return nil
}

func celeryMessage(queueKey, notificationID string) ([]byte, error) {
	task := uuid.NewString()
	body, err := json.Marshal([]any{[]string{notificationID}, map[string]any{},
		map[string]any{"callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil}})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"body":             base64.StdEncoding.EncodeToString(body),
		"content-encoding": "utf-8",
		"content-type":     "application/json",
		"headers": map[string]any{
			"lang": "py", "task": "pulse.deliver", "id": task, "shadow": nil, "eta": nil, "expires": nil,
			"group": nil, "group_index": nil, "retries": 0, "timelimit": []any{nil, nil}, "root_id": task,
			"parent_id": nil, "argsrepr": "['" + notificationID + "']", "kwargsrepr": "{}", "origin": "pulse-bench",
			"ignore_result": true,
		},
		"properties": map[string]any{
			"correlation_id": task, "reply_to": "", "delivery_mode": 2,
			"delivery_info": map[string]any{"exchange": "", "routing_key": queueKey},
			"priority":      0, "body_encoding": "base64", "delivery_tag": uuid.NewString(),
		},
	})
}

// startCelery starts the old stack's worker on queueKey.
func (h *Harness) startCelery(ctx context.Context, e *runEnv, queueKey string) (*proc.Process, error) {
	dsn := withOptions(h.dbURL, "-csearch_path="+e.schema)
	env := append(os.Environ(),
		"BENCH_CELERY_BROKER="+h.redisURL,
		"BENCH_CELERY_QUEUE="+queueKey,
		"BENCH_PG_DSN="+dsn,
		"BENCH_WEBHOOK_SECRET="+secret,
		"PYTHONDONTWRITEBYTECODE=1",
	)
	spec := proc.Spec{
		Name: "celery-worker", Path: h.opts.Python, Forks: true, Dir: filepath.Join(h.root, "bench", "celery"), Env: env, LogDir: h.work,
		Args: []string{"-m", "celery", "-A", "pulse_old", "worker", "--pool=prefork",
			"--concurrency=" + strconv.Itoa(h.opts.DrainConcurrency), "--loglevel=WARNING",
			"--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queueKey, "-n", e.prefix + "@bench"},
	}
	p, err := proc.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// startRiver starts the River baseline's worker (bench/riverworker) on the run's schema, where
// River's tables and jobs already are. A profiled run gives it the pprof listener, as Pulse's
// processes get.
func (h *Harness) startRiver(ctx context.Context, e *runEnv, profiled bool) (*proc.Process, error) {
	const command = "riverworker"
	if err := h.needBuilt(command); err != nil {
		return nil, err
	}
	spec := proc.Spec{Name: "river-worker", Path: filepath.Join(h.plain, command), LogDir: h.work,
		Env: append(os.Environ(),
			"BENCH_RIVER_DATABASE_URL="+e.dbURL,
			"BENCH_RIVER_SCHEMA="+e.schema,
			"BENCH_RIVER_WEBHOOK_SECRET="+secret,
			"BENCH_RIVER_MAX_WORKERS="+strconv.Itoa(h.opts.DrainConcurrency),
			"GODEBUG=gctrace=1", // heap figures, as Pulse's processes; see gcTrace
		)}
	if profiled {
		port, err := privateserver.FreePort()
		if err != nil {
			return nil, err
		}
		spec.Path = filepath.Join(h.profiled, command)
		spec.Pprof = fmt.Sprintf("127.0.0.1:%d", port)
		spec.Env = append(spec.Env, "PULSE_BENCH_PPROF_ADDR="+spec.Pprof)
	}
	p, err := proc.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// withOptions adds libpq's options parameter (server settings for the session) to a URL.
func withOptions(base, options string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "options=" + strings.ReplaceAll(options, "=", "%3D")
}
