package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/bench/loadgen"
	"github.com/pulse-knative/pulse/bench/proc"
	"github.com/pulse-knative/pulse/bench/stats"
	"github.com/pulse-knative/pulse/pkg/queue"
)

const (
	// benchSource is the CloudEvent source of every request the bench sends.
	benchSource = "urn:pulse:bench"
	// unusedSink is the webhook URL of notifications that are only ingested, never sent.
	unusedSink = "http://127.0.0.1:9/hook"
)

// warmup is how many requests warm a run's connections up before it is measured.
func warmup(n int) int { return min(500, max(n/20, 10)) }

// sender sends n events numbered from first to ingest.
type sender func(ctx context.Context, t loadgen.Target, c *loadgen.Client, first, n int) loadgen.Result

// ingestScenarios are the ingest runs and their naive baselines.
func (h *Harness) ingestScenarios() []scenario {
	o := h.opts
	var out []scenario
	for _, c := range o.IngestConcurrency {
		base := fmt.Sprintf("naive-single-c%d", c)
		out = append(out, scenario{
			Name: base, Group: "Ingest, single-event", Title: fmt.Sprintf("baseline: naive INSERT + XADD per item, concurrency %d", c),
			Unit: "notifications/s",
			run: func(ctx context.Context, rep int, _ bool) (Run, error) {
				return h.runNaive(ctx, c, 1)
			},
		})
		sc := scenario{
			Name: fmt.Sprintf("ingest-single-c%d", c), Group: "Ingest, single-event", Baseline: base,
			Title: fmt.Sprintf("Pulse ingest, binary CloudEvent per request, concurrency %d", c), Unit: "notifications/s",
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				send := func(ctx context.Context, t loadgen.Target, cl *loadgen.Client, first, n int) loadgen.Result {
					return loadgen.Singles(ctx, t, cl, first, n, c)
				}
				return h.runIngest(ctx, profile, c, send)
			},
		}
		if c == 64 {
			sc.Target = fmt.Sprintf("≥ %g× naive", targetIngestOverNaive)
			sc.Check = func(s *Summary) bool { return s.Ratio >= targetIngestOverNaive }
		}
		out = append(out, sc)
	}
	if o.PacedRate > 0 {
		rate := o.PacedRate
		out = append(out, scenario{
			Name: fmt.Sprintf("ingest-paced-%.0f", rate), Group: "Ingest, single-event",
			Title: fmt.Sprintf("Pulse ingest at a fixed %.0f requests/s (open loop, latency from when each was due)", rate),
			Unit:  "notifications/s",
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				send := func(ctx context.Context, t loadgen.Target, cl *loadgen.Client, first, n int) loadgen.Result {
					return loadgen.Paced(ctx, t, cl, first, n, rate, 128)
				}
				return h.runIngest(ctx, profile, 128, send)
			},
		})
	}
	for _, size := range o.BatchSizes {
		base := fmt.Sprintf("naive-batch-%d", size)
		c := o.BatchConcurrency
		out = append(out, scenario{
			Name: base, Group: "Ingest, batch",
			Title: fmt.Sprintf("baseline: one multi-row INSERT + pipelined XADDs per %d, concurrency %d", size, c),
			Unit:  "notifications/s",
			run: func(ctx context.Context, rep int, _ bool) (Run, error) {
				return h.runNaive(ctx, c, size)
			},
		})
		out = append(out, scenario{
			Name: fmt.Sprintf("ingest-batch-%d", size), Group: "Ingest, batch", Baseline: base,
			Title:  fmt.Sprintf("Pulse ingest, batches of %d (application/cloudevents-batch+json), concurrency %d", size, c),
			Unit:   "notifications/s",
			Target: fmt.Sprintf("≥ %g× naive", targetBatchOverNaive),
			Check:  func(s *Summary) bool { return s.Ratio >= targetBatchOverNaive },
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				send := func(ctx context.Context, t loadgen.Target, cl *loadgen.Client, first, n int) loadgen.Result {
					return loadgen.Batches(ctx, t, cl, first, n, size, c)
				}
				return h.runIngest(ctx, profile, c, send)
			},
		})
	}
	return out
}

// runIngest runs ingest alone and sends it N events with send.
func (h *Harness) runIngest(ctx context.Context, profile bool, conns int, send sender) (Run, error) {
	n := h.opts.N
	r := Run{N: n}
	e, err := h.newLoadEnv(ctx)
	if err != nil {
		return r, err
	}
	defer e.close()
	p, err := e.start(ctx, "ingest", "ingest", nil, profile)
	if err != nil {
		return r, err
	}
	t := loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", p.Port), Source: benchSource, IDPrefix: "warm-",
		Sink: unusedSink, Priority: "high"}
	client := loadgen.NewClient(t.Addr, conns)
	defer client.Close()
	// Enough to open every connection of the client and of ingest's pool.
	warm := max(warmup(n), 2*conns)
	if res := send(ctx, t, client, 0, warm); res.Errors > 0 {
		return r, fmt.Errorf("warm-up: %d errors, first: %s", res.Errors, res.FirstError)
	}
	t.IDPrefix = "ev-"
	w, err := h.begin(ctx, []*proc.Process{p}, profile)
	if err != nil {
		return r, err
	}
	res := send(ctx, t, client, 0, n)
	m := w.end(ctx, n)
	r.absorb(m)
	r.Throughput = float64(res.Accepted) / res.End.Sub(res.Start).Seconds()
	r.Latency = stats.Latencies(res.Latencies)
	r.Errors, r.FirstError, r.Duplicates = res.Errors, res.FirstError, res.Duplicates
	if res.Requests != res.Events {
		r.extra("requests", float64(res.Requests))
	}
	return r, h.checkIngested(ctx, e, &r, n, warm)
}

// checkIngested counts the rows and stream entries a run left: every notification stored
// once and enqueued once.
func (h *Harness) checkIngested(ctx context.Context, e *runEnv, r *Run, n, warm int) error {
	var rows int
	if err := e.pool.QueryRow(ctx, "select count(*) from notifications where event_id like 'ev-%'").Scan(&rows); err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	entries, err := h.rdb.XLen(ctx, queue.NewKeys(e.prefix).Stream("high")).Result()
	if err != nil {
		return fmt.Errorf("stream length: %w", err)
	}
	r.Missing = n - rows
	if extra := int(entries) - rows - warm; extra > 0 {
		r.Duplicates += extra
		r.Notes = append(r.Notes, fmt.Sprintf("%d more stream entries than notifications", extra))
	} else if extra < 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d notifications without a stream entry", -extra))
	}
	return nil
}

// The naive baseline's statements: what an application without group commit does.
const (
	naiveInsert = `insert into notifications (id, source, event_id, channel, priority, status, recipient, data,
		max_attempts, queued_at, created_at, updated_at)
		values ($1, $2, $3, 'webhook', 'high', 'queued', $4, $5::jsonb, 8, $6, $6, $6)`
	naiveBatchInsert = `insert into notifications (id, source, event_id, channel, priority, status, recipient, data,
		max_attempts, queued_at, created_at, updated_at)
		select id, $2, event_id, 'webhook', 'high', 'queued', $3, data::jsonb, 8, $4, $4, $4
		from unnest($1::uuid[], $5::text[], $6::text[]) as t(id, event_id, data)`
)

// runNaive is the baseline: the bench itself stores and enqueues N notifications with pgx and
// go-redis, no HTTP, no validation, from concurrency goroutines: one INSERT (its own
// transaction) and one XADD per item when batch is 1, else one multi-row INSERT and one
// pipelined round of XADDs per batch.
func (h *Harness) runNaive(ctx context.Context, concurrency, batch int) (Run, error) {
	n := h.opts.N
	r := Run{N: n}
	e, err := h.newLoadEnv(ctx)
	if err != nil {
		return r, err
	}
	defer e.close()
	pc, err := pgxpool.ParseConfig(e.dbURL)
	if err != nil {
		return r, err
	}
	pc.MaxConns = int32(concurrency)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return r, err
	}
	defer pool.Close()
	ropts, _ := redis.ParseURL(h.redisURL)
	ropts.PoolSize = concurrency
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	stream := queue.NewKeys(e.prefix).Stream("high")

	store := func(ctx context.Context, prefix string, first, k int) error {
		now := time.Now()
		at := strconv.FormatInt(now.UnixMilli(), 10)
		ids := make([]uuid.UUID, k)
		for j := range ids {
			ids[j] = uuid.Must(uuid.NewV7())
		}
		if k == 1 {
			data := fmt.Sprintf(`{"n":%d}`, first)
			if _, err := pool.Exec(ctx, naiveInsert, ids[0], benchSource, prefix+strconv.Itoa(first), unusedSink, data, now); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			return rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream,
				Values: []string{queue.FieldNotificationID, ids[0].String(), queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, at}}).Err()
		}
		eventIDs, datas := make([]string, k), make([]string, k)
		for j := range k {
			eventIDs[j] = prefix + strconv.Itoa(first+j)
			datas[j] = fmt.Sprintf(`{"n":%d}`, first+j)
		}
		if _, err := pool.Exec(ctx, naiveBatchInsert, ids, benchSource, unusedSink, now, eventIDs, datas); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		pipe := rdb.Pipeline()
		for _, id := range ids {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream,
				Values: []string{queue.FieldNotificationID, id.String(), queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, at}})
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	loop := func(prefix string, total int) loadgen.Result {
		var next atomic.Int64
		var mu sync.Mutex
		res := loadgen.Result{Start: time.Now()}
		var wg sync.WaitGroup
		for range concurrency {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(int64(batch))) - batch
					if i >= total {
						return
					}
					k := min(batch, total-i)
					start := time.Now()
					err := store(ctx, prefix, i, k)
					took := time.Since(start)
					mu.Lock()
					res.Requests++
					res.Latencies = append(res.Latencies, took)
					if err != nil {
						res.Errors++
						if res.FirstError == "" {
							res.FirstError = err.Error()
						}
					} else {
						res.Accepted += k
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		res.End = time.Now()
		return res
	}
	warm := max(warmup(n), 2*concurrency)
	if res := loop("warm-", warm); res.Errors > 0 {
		return r, fmt.Errorf("warm-up: %s", res.FirstError)
	}
	w, err := h.begin(ctx, nil, false)
	if err != nil {
		return r, err
	}
	w.harnessRole = "baseline"
	res := loop("ev-", n)
	m := w.end(ctx, n)
	r.absorb(m)
	r.Throughput = float64(res.Accepted) / res.End.Sub(res.Start).Seconds()
	r.Latency = stats.Latencies(res.Latencies)
	r.Errors, r.FirstError = res.Errors, res.FirstError
	return r, h.checkIngested(ctx, e, &r, n, warm)
}
