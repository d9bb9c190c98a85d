package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/scheduler"
	"github.com/pulse-knative/pulse/pkg/store"
)

// clock is a test clock that moves only when told; jobs may read it from several goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

type testBundle struct {
	clock     *clock
	start     time.Time
	store     *store.Store
	redis     *redis.Client
	keys      queue.Keys
	cfg       scheduler.Config
	scheduler *scheduler.Scheduler
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &testBundle{clock: &clock{t: start}, start: start}
	b.store = testfactory.Store(ctx, t, &testfactory.StoreOpts{Now: b.clock.Now, MaxConns: 8})

	url, prefix := pulsetest.Redis(t)
	b.redis = pulsetest.RedisClient(t, url)
	b.keys = queue.NewKeys(prefix)

	b.cfg = scheduler.Config{Store: b.store, Redis: b.redis, Keys: b.keys,
		BatchSize: 100, Budget: time.Minute, RecoverQueuedAfter: 5 * time.Minute, Retention: 24 * time.Hour}
	b.scheduler = scheduler.New(b.cfg)
	return b
}

// unreachableRedis returns a client of a Redis server that has stopped. It does not retry, so
// each command fails at once.
func unreachableRedis(t *testing.T) *redis.Client {
	t.Helper()
	srv := pulsetest.StartRedis(t)
	opts, err := redis.ParseURL(srv.URL())
	require.NoError(t, err)
	opts.MaxRetries = -1
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	srv.Stop()
	return client
}

// with returns a scheduler over the bundle's datastores configured by change.
func (b *testBundle) with(change func(*scheduler.Config)) *scheduler.Scheduler {
	cfg := b.cfg
	change(&cfg)
	return scheduler.New(cfg)
}

// request is a webhook notification request; sendAt, when not zero, schedules it.
func request(id string, priority notification.Priority, sendAt time.Time) store.NewNotification {
	r := store.NewNotification{Source: "test", EventID: id, MaxAttempts: 3, Request: notification.Request{
		Channel: notification.Webhook, To: "https://example.com/hook", Priority: priority,
	}}
	if !sendAt.IsZero() {
		r.Request.SendAt = &sendAt
	}
	return r
}

func (b *testBundle) insert(t *testing.T, reqs ...store.NewNotification) []string {
	t.Helper()
	ids := make([]string, 0, len(reqs))
	for len(reqs) > 0 {
		n := min(len(reqs), 1000)
		acc, err := b.store.Insert(context.Background(), reqs[:n])
		require.NoError(t, err)
		for _, a := range acc {
			ids = append(ids, a.ID)
		}
		reqs = reqs[n:]
	}
	return ids
}

// scheduled inserts n high-priority notifications to send at at.
func (b *testBundle) scheduled(t *testing.T, n int, at time.Time) []string {
	t.Helper()
	reqs := make([]store.NewNotification, n)
	for i := range reqs {
		reqs[i] = request(fmt.Sprintf("%s-%d", at.Format(time.RFC3339Nano), i), notification.High, at)
	}
	return b.insert(t, reqs...)
}

func (b *testBundle) run(t *testing.T, s *scheduler.Scheduler, job string) scheduler.Report {
	t.Helper()
	r, err := s.Run(context.Background(), job)
	require.NoError(t, err)
	require.Equal(t, job, r.Job)
	return r
}

// streamIDs returns the notification ids of a priority's stream entries, in stream order.
func (b *testBundle) streamIDs(t *testing.T, priority notification.Priority) []string {
	t.Helper()
	msgs, err := b.redis.XRange(context.Background(), b.keys.Stream(string(priority)), "-", "+").Result()
	require.NoError(t, err)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Values[queue.FieldNotificationID].(string)
		require.Equal(t, "webhook", m.Values[queue.FieldChannel])
	}
	return ids
}

func (b *testBundle) status(t *testing.T, id string) notification.Notification {
	t.Helper()
	return testfactory.Get(t, b.store, id)
}

func (b *testBundle) countStatus(t *testing.T, status notification.Status) int {
	t.Helper()
	var n int
	require.NoError(t, b.store.Pool().QueryRow(context.Background(),
		"select count(*) from notifications where status = $1", status).Scan(&n))
	return n
}

func sorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

func TestRunUnknownJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.scheduler.Run(context.Background(), "reboot")
	require.ErrorIs(t, err, scheduler.ErrUnknownJob)
}

func TestJobsWithNothingToDo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := map[string]map[string]int{
		scheduler.JobRelease: {"released": 0},
		scheduler.JobRecover: {"requeued": 0, "retrying": 0, "failed": 0},
		scheduler.JobExpire:  {"expired": 0},
		scheduler.JobPurge:   {"purged": 0},
		scheduler.JobTrim:    {"trimmed": 0, "dead_letters_trimmed": 0},
	}
	for _, job := range scheduler.Jobs {
		r := b.run(t, b.scheduler, job)
		require.Equal(t, want[job], r.Counts, job)
		require.True(t, r.Complete, job)
		require.LessOrEqual(t, r.Batches, 2, "%s: one look per kind of work", job)
	}
}

func TestReleaseEnqueuesToPriorityStreams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := b.start.Add(time.Minute)
	ids := b.insert(t, request("h", notification.High, at), request("l", notification.Low, at),
		request("later", notification.Low, at.Add(time.Hour)))

	b.clock.Set(at)
	r := b.run(t, b.scheduler, scheduler.JobRelease)
	require.Equal(t, map[string]int{"released": 2}, r.Counts)
	require.Equal(t, []string{ids[0]}, b.streamIDs(t, notification.High))
	require.Equal(t, []string{ids[1]}, b.streamIDs(t, notification.Low))
	msgs, err := b.redis.XRange(context.Background(), b.keys.Stream("low"), "-", "+").Result()
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(at.UnixMilli()), msgs[0].Values[queue.FieldEnqueuedAt])

	r = b.run(t, b.scheduler, scheduler.JobRelease)
	require.Equal(t, map[string]int{"released": 0}, r.Counts, "a second run finds nothing")
	require.Len(t, b.streamIDs(t, notification.High), 1)
	require.Equal(t, notification.Scheduled, b.status(t, ids[2]).Status)
}

// TestReleaseTwiceAtOnce runs release four times at once over more rows than one batch: every
// row is moved by exactly one run (the counts add up to the rows) and has exactly one stream
// entry.
func TestReleaseTwiceAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := b.start.Add(time.Minute)
	ids := b.scheduled(t, 1000, at)
	b.clock.Set(at)
	s := b.with(func(c *scheduler.Config) { c.BatchSize = 50 })

	reports := make([]scheduler.Report, 4)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range reports {
		wg.Go(func() {
			<-start
			r, err := s.Run(context.Background(), scheduler.JobRelease)
			if err != nil {
				t.Error(err)
			}
			reports[i] = r
		})
	}
	close(start)
	wg.Wait()

	released := 0
	for _, r := range reports {
		released += r.Counts["released"]
	}
	// A run that came back short because another held the rows stops; the others go on, so
	// together they release everything, each row once.
	require.Equal(t, 1000, released, "no row moved twice")
	require.Equal(t, 1000, b.countStatus(t, notification.Queued))
	length, err := b.redis.XLen(context.Background(), b.keys.Stream("high")).Result()
	require.NoError(t, err)
	require.Equal(t, int64(1000), length, "no row enqueued twice")
	require.Equal(t, sorted(ids), sorted(b.streamIDs(t, notification.High)))
}

// TestReleaseCatchesUp: after a long gap without ticks (cron down for hours), one run releases
// everything that fell due meanwhile, batch after batch.
func TestReleaseCatchesUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, b.scheduled(t, 105, b.start.Add(time.Duration(i+1)*10*time.Minute))...)
	}
	b.clock.Set(b.start.Add(3 * time.Hour))
	r := b.run(t, b.scheduler, scheduler.JobRelease)
	require.Equal(t, map[string]int{"released": 1050}, r.Counts)
	require.Equal(t, 11, r.Batches)
	require.True(t, r.Complete)
	require.Equal(t, sorted(ids), sorted(b.streamIDs(t, notification.High)))
}

// TestReleaseBudget: a run whose budget is spent stops between batches and says so; the next
// run goes on where it stopped.
func TestReleaseBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.scheduled(t, 25, b.start.Add(time.Minute))
	b.clock.Set(b.start.Add(time.Hour))
	s := b.with(func(c *scheduler.Config) { c.BatchSize, c.Budget = 10, time.Nanosecond })

	r := b.run(t, s, scheduler.JobRelease)
	require.Equal(t, map[string]int{"released": 10}, r.Counts)
	require.Equal(t, 1, r.Batches)
	require.False(t, r.Complete)
	b.run(t, s, scheduler.JobRelease)
	r = b.run(t, s, scheduler.JobRelease)
	require.Equal(t, map[string]int{"released": 5}, r.Counts)
	require.True(t, r.Complete)
	require.Len(t, b.streamIDs(t, notification.High), 25)
}

// provider is a channel provider that records when it was called and answers with outcomes in
// turn (the last one again once they run out).
type provider struct {
	clock    *clock
	mu       sync.Mutex
	outcomes []channel.Outcome
	sent     []time.Time
}

func (p *provider) Send(_ context.Context, m channel.Message) channel.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, p.clock.Now())
	o := p.outcomes[min(len(p.sent), len(p.outcomes))-1]
	if o == channel.Transient {
		return channel.Result{Outcome: o, StatusCode: 503, Err: fmt.Errorf("receiver answered 503")}
	}
	return channel.Result{Outcome: o, StatusCode: 200}
}

func (p *provider) sends() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.sent...)
}

// deliverer delivers with p on the test clock, retrying after 5 s then 30 s, without jitter.
func (b *testBundle) deliverer(p *provider) *delivery.Deliverer {
	return delivery.NewDeliverer(delivery.DelivererConfig{Store: b.store,
		Providers: map[notification.Channel]channel.Provider{notification.Webhook: p},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retry:     config.Retry{Schedule: []time.Duration{5 * time.Second, 30 * time.Second}},
		Lease:     time.Minute, SendTimeout: 10 * time.Second, Now: b.clock.Now,
		Jitter: func() float64 { return 0.5 }})
}

// dispatch delivers every entry of the high stream from after onward, as the stream source
// and deliver function would, and returns the last entry's id.
func (b *testBundle) dispatch(t *testing.T, d *delivery.Deliverer, after string) string {
	t.Helper()
	msgs, err := b.redis.XRange(context.Background(), b.keys.Stream("high"), "("+after, "+").Result()
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, d.Deliver(context.Background(), m.Values[queue.FieldNotificationID].(string)))
		after = m.ID
	}
	return after
}

// TestScheduledSendIsDeliveredAtSendAt: a notification whose send_at is 2 s ahead is not
// released (and so not sent) a moment before, and is sent on the tick at send_at.
func TestScheduledSendIsDeliveredAtSendAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sendAt := b.start.Add(2 * time.Second)
	id := b.insert(t, request("soon", notification.High, sendAt))[0]
	require.Equal(t, notification.Scheduled, b.status(t, id).Status)
	p := &provider{clock: b.clock, outcomes: []channel.Outcome{channel.Delivered}}
	d := b.deliverer(p)

	last := "0"
	for _, at := range []time.Duration{0, time.Second, 2*time.Second - time.Millisecond} {
		b.clock.Set(b.start.Add(at))
		require.Equal(t, 0, b.run(t, b.scheduler, scheduler.JobRelease).Counts["released"], "at +%s", at)
		last = b.dispatch(t, d, last)
	}
	require.Empty(t, p.sends(), "not sent before send_at")

	b.clock.Set(sendAt)
	require.Equal(t, 1, b.run(t, b.scheduler, scheduler.JobRelease).Counts["released"])
	b.dispatch(t, d, last)
	require.Equal(t, []time.Time{sendAt}, p.sends())
	n := b.status(t, id)
	require.Equal(t, notification.Delivered, n.Status)
	require.False(t, n.DeliveredAt.Before(sendAt))
}

// TestRetriesReleasedAtBackoff: a notification that keeps failing is retried 5 s, then 30 s,
// after each failure (the configured schedule), never earlier, and fails after its last
// attempt.
func TestRetriesReleasedAtBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.insert(t, request("flaky", notification.High, time.Time{}))[0]
	p := &provider{clock: b.clock, outcomes: []channel.Outcome{channel.Transient}}
	d := b.deliverer(p)

	// The first attempt: ingest would have added the entry; do what the deliver function does.
	require.NoError(t, d.Deliver(context.Background(), id))
	last := "0"
	tick := func(at time.Duration) int {
		b.clock.Set(b.start.Add(at))
		n := b.run(t, b.scheduler, scheduler.JobRelease).Counts["released"]
		last = b.dispatch(t, d, last)
		return n
	}
	require.Zero(t, tick(5*time.Second-time.Millisecond))
	require.Equal(t, notification.Retrying, b.status(t, id).Status)
	require.Equal(t, 1, tick(5*time.Second))
	require.Zero(t, tick(35*time.Second-time.Millisecond))
	require.Equal(t, 1, tick(35*time.Second))
	require.Zero(t, tick(time.Hour), "three attempts made: no more")

	require.Equal(t, []time.Time{b.start, b.start.Add(5 * time.Second), b.start.Add(35 * time.Second)}, p.sends())
	n := b.status(t, id)
	require.Equal(t, notification.Failed, n.Status)
	require.Equal(t, 3, n.Attempts)
	require.Len(t, b.streamIDs(t, notification.High), 2, "one entry per released retry")
}

// TestRecoverRequeuesLostEntries: a queued notification whose entry was lost (the XADD after
// its commit failed, or Redis was flushed) is added again once it has waited longer than the
// threshold, and then not again on every tick.
func TestRecoverRequeuesLostEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Store.Insert does not XADD: these are queued with no entry, as after a lost XADD.
	ids := b.insert(t, request("a", notification.High, time.Time{}), request("b", notification.Low, time.Time{}))

	b.clock.Set(b.start.Add(5*time.Minute - time.Millisecond))
	require.Equal(t, 0, b.run(t, b.scheduler, scheduler.JobRecover).Counts["requeued"], "not yet: the entry may be slow")
	b.clock.Set(b.start.Add(5 * time.Minute))
	r := b.run(t, b.scheduler, scheduler.JobRecover)
	require.Equal(t, map[string]int{"requeued": 2, "retrying": 0, "failed": 0}, r.Counts)
	require.Equal(t, []string{ids[0]}, b.streamIDs(t, notification.High))
	require.Equal(t, []string{ids[1]}, b.streamIDs(t, notification.Low))
	require.True(t, b.status(t, ids[0]).QueuedAt.Equal(b.start.Add(5*time.Minute)))

	b.clock.Advance(time.Minute)
	require.Equal(t, 0, b.run(t, b.scheduler, scheduler.JobRecover).Counts["requeued"], "not re-sent every tick")
	b.clock.Advance(4 * time.Minute)
	require.Equal(t, 2, b.run(t, b.scheduler, scheduler.JobRecover).Counts["requeued"], "but again after another threshold")
	require.Len(t, b.streamIDs(t, notification.High), 2)
}

// TestRecoverLapsedLeases: a notification whose deliver function died mid-send (its lease ran
// out) goes back to retrying and is released on the next tick; one whose lost attempt was its
// last fails.
func TestRecoverLapsedLeases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	last := request("last", notification.High, time.Time{})
	last.MaxAttempts = 1
	ids := b.insert(t, request("again", notification.High, time.Time{}), last)
	for _, id := range ids {
		_, err := b.store.Claim(context.Background(), id, time.Minute)
		require.NoError(t, err)
	}

	b.clock.Advance(time.Minute - time.Millisecond)
	require.Equal(t, map[string]int{"requeued": 0, "retrying": 0, "failed": 0}, b.run(t, b.scheduler, scheduler.JobRecover).Counts)
	b.clock.Advance(time.Millisecond)
	require.Equal(t, map[string]int{"requeued": 0, "retrying": 1, "failed": 1}, b.run(t, b.scheduler, scheduler.JobRecover).Counts)
	require.Equal(t, notification.Failed, b.status(t, ids[1]).Status)

	require.Equal(t, 1, b.run(t, b.scheduler, scheduler.JobRelease).Counts["released"])
	require.Equal(t, []string{ids[0]}, b.streamIDs(t, notification.High))
	n := b.status(t, ids[0])
	require.Equal(t, notification.Queued, n.Status)
	require.Equal(t, 1, n.Attempts)
}

func TestExpireJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expires := b.start.Add(time.Minute)
	r1, r2, r3 := request("queued", notification.High, time.Time{}), request("scheduled", notification.High, b.start.Add(2*time.Minute)),
		request("forever", notification.High, time.Time{})
	r1.Request.ExpiresAt, r2.Request.ExpiresAt = &expires, &expires
	ids := b.insert(t, r1, r2, r3)

	require.Equal(t, map[string]int{"expired": 0}, b.run(t, b.scheduler, scheduler.JobExpire).Counts)
	b.clock.Set(b.start.Add(time.Hour))
	require.Equal(t, map[string]int{"expired": 2}, b.run(t, b.scheduler, scheduler.JobExpire).Counts)
	require.Equal(t, notification.Expired, b.status(t, ids[0]).Status)
	require.Equal(t, notification.Expired, b.status(t, ids[1]).Status)
	require.Equal(t, notification.Queued, b.status(t, ids[2]).Status)
	require.Equal(t, map[string]int{"released": 0}, b.run(t, b.scheduler, scheduler.JobRelease).Counts, "an expired send is never released")
}

// TestPurgeJob: only finished notifications older than the retention go, with their attempts,
// in batches.
func TestPurgeJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	reqs := make([]store.NewNotification, 0, 260)
	for i := range 250 {
		reqs = append(reqs, request(fmt.Sprint("old-", i), notification.High, time.Time{}))
	}
	reqs = append(reqs, request("unfinished", notification.High, time.Time{}), request("recent", notification.High, time.Time{}))
	ids := b.insert(t, reqs...)
	p := &provider{clock: b.clock, outcomes: []channel.Outcome{channel.Delivered}}
	d := b.deliverer(p)
	for _, id := range ids[:250] {
		require.NoError(t, d.Deliver(ctx, id))
	}
	b.clock.Advance(12 * time.Hour)
	require.NoError(t, d.Deliver(ctx, ids[251]))

	b.clock.Advance(12 * time.Hour)
	require.Equal(t, map[string]int{"purged": 0}, b.run(t, b.scheduler, scheduler.JobPurge).Counts, "exactly the retention is kept")
	b.clock.Advance(time.Millisecond)
	r := b.run(t, b.scheduler, scheduler.JobPurge)
	require.Equal(t, map[string]int{"purged": 250}, r.Counts)
	require.Equal(t, 3, r.Batches)

	var left []string
	rows, err := b.store.Pool().Query(ctx, "select event_id from notifications order by event_id")
	require.NoError(t, err)
	for rows.Next() {
		var e string
		require.NoError(t, rows.Scan(&e))
		left = append(left, e)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"recent", "unfinished"}, left)
	var attempts int
	require.NoError(t, b.store.Pool().QueryRow(ctx, "select count(*) from delivery_attempts").Scan(&attempts))
	require.Equal(t, 1, attempts, "only the kept notification's attempt is left")
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(scheduler.Report{Job: "release", Counts: map[string]int{"released": 3}, Batches: 1, Complete: true,
		Duration: time.Millisecond})
	require.NoError(t, err)
	require.JSONEq(t, `{"job":"release","counts":{"released":3},"batches":1,"complete":true,"duration_ns":1000000}`, string(b))
}

// failXAdd makes every pipeline that holds an XADD fail, as a Redis that went away between
// the commit and the XADDs would.
type failXAdd struct{}

func (failXAdd) DialHook(next redis.DialHook) redis.DialHook { return next }

func (failXAdd) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (failXAdd) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "xadd" {
				return fmt.Errorf("connection reset by peer")
			}
		}
		return next(ctx, cmds)
	}
}

// TestReleaseWhenXAddFails: rows released whose XADD failed stay queued, and recover adds them
// once they have waited the threshold.
func TestReleaseWhenXAddFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.scheduled(t, 3, b.start.Add(time.Minute))
	b.clock.Set(b.start.Add(time.Minute))
	broken := redis.NewClient(b.redis.Options())
	t.Cleanup(func() { broken.Close() })
	broken.AddHook(failXAdd{})
	s := b.with(func(c *scheduler.Config) { c.Redis = broken })

	r, err := s.Run(context.Background(), scheduler.JobRelease)
	require.ErrorContains(t, err, "connection reset by peer")
	require.Equal(t, map[string]int{"released": 0, "unenqueued": 3}, r.Counts)
	require.Equal(t, 3, b.countStatus(t, notification.Queued))
	require.Empty(t, b.streamIDs(t, notification.High))

	_, err = s.Run(context.Background(), scheduler.JobRecover)
	require.NoError(t, err, "nothing has waited long enough yet")
	b.clock.Advance(5 * time.Minute)
	r, err = s.Run(context.Background(), scheduler.JobRecover)
	require.ErrorContains(t, err, "connection reset by peer")
	require.Equal(t, 0, r.Counts["requeued"])
	require.True(t, b.status(t, ids[0]).QueuedAt.Equal(b.start.Add(time.Minute)), "a failed requeue changes nothing")

	r = b.run(t, b.scheduler, scheduler.JobRecover)
	require.Equal(t, 3, r.Counts["requeued"])
	require.Equal(t, sorted(ids), sorted(b.streamIDs(t, notification.High)))
}

// TestReleaseWhenRedisIsDown: with Redis unreachable release moves nothing, so nothing waits
// for recover.
func TestReleaseWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.scheduled(t, 3, b.start.Add(time.Minute))
	b.clock.Set(b.start.Add(time.Minute))
	down := unreachableRedis(t)
	s := b.with(func(c *scheduler.Config) { c.Redis = down })

	_, err := s.Run(context.Background(), scheduler.JobRelease)
	require.ErrorContains(t, err, "ping Redis before releasing")
	require.Equal(t, 3, b.countStatus(t, notification.Scheduled))
}
