package faulttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pipelinetest"
	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

func TestMain(m *testing.M) { pipelinetest.Main(m) }

// waitTimeout bounds how long a test waits for the pipeline to settle after a fault.
const waitTimeout = 3 * time.Minute

// faultEnv shortens the pipeline's clocks so that recovery happens within a test: queued rows
// whose entry was lost are enqueued again after 3 s, and a failed send is retried within a
// second or two, ten times.
var faultEnv = map[string]string{
	"PULSE_RECOVER_QUEUED_AFTER": "3s",
	"PULSE_RETRY_SCHEDULE":       "500ms,1s,1s,2s,2s,2s,2s,2s,2s,2s",
}

type testBundle struct {
	pipeline *pipelinetest.Pipeline
	db       *pgxpool.Pool
	redis    *redis.Client
	keys     queue.Keys
	source   string
	client   *http.Client
}

// setup starts a pipeline, cron included, on a fresh schema and a Redis: the shared test Redis
// under a prefix of its own, or srv when it is not nil, for a test that breaks Redis itself.
func setup(t *testing.T, srv *pulsetest.RedisServer) *testBundle {
	t.Helper()
	redisURL, prefix := "", "pulse"
	if srv != nil {
		redisURL = srv.URL()
	} else {
		redisURL, prefix = pulsetest.Redis(t)
	}
	p := pipelinetest.Start(t, pipelinetest.Options{DatabaseURL: pulsetest.DatabaseURL(t), RedisURL: redisURL,
		Prefix: prefix, Cron: true, Env: faultEnv})
	opts, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	return &testBundle{pipeline: p, db: p.DB(t), redis: rdb, keys: queue.NewKeys(prefix),
		source: "urn:pulse:fault:" + prefix, client: client}
}

// send posts notifications from through from+n-1 to ingest, one CloudEvent each, a quarter of
// them low priority, and returns their ids. A sendAt that is not zero schedules them.
func (b *testBundle) send(t *testing.T, from, n int, sendAt time.Time) []string {
	t.Helper()
	ids, err := b.sendAll(from, n, sendAt)
	require.NoError(t, err)
	return ids
}

// sendInBackground is send while the test goes on to break things; the function it returns
// waits for the posts to end and returns the ids.
func (b *testBundle) sendInBackground(t *testing.T, from, n int) func() []string {
	type result struct {
		ids []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := b.sendAll(from, n, time.Time{})
		done <- result{ids, err}
	}()
	return func() []string {
		t.Helper()
		r := <-done
		require.NoError(t, r.err)
		return r.ids
	}
}

func (b *testBundle) sendAll(from, n int, sendAt time.Time) ([]string, error) {
	ids := make([]string, n)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				id, err := b.post(from+i, sendAt)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				ids[i] = id
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids, firstErr
}

func (b *testBundle) post(i int, sendAt time.Time) (string, error) {
	priority := notification.High
	if i%4 == 0 {
		priority = notification.Low
	}
	body := fmt.Sprintf(`{"channel":"webhook","to":%q,"priority":%q,"data":{"n":%d}`, b.pipeline.ReceiverURL(), priority, i)
	if !sendAt.IsZero() {
		body += fmt.Sprintf(`,"send_at":%q`, sendAt.UTC().Format(time.RFC3339Nano))
	}
	body += "}"
	req, err := http.NewRequest(http.MethodPost, b.pipeline.IngestURL()+"/", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", fmt.Sprint("n-", i))
	req.Header.Set("Ce-Source", b.source)
	req.Header.Set("Ce-Type", notification.TypeRequested)
	resp, err := b.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("post notification %d: %w", i, err)
	}
	defer resp.Body.Close()
	var answer struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("post notification %d: status %d, %v", i, resp.StatusCode, err)
	}
	return answer.ID, nil
}

func (b *testBundle) counts(t *testing.T) map[string]int {
	t.Helper()
	return pipelinetest.StatusCounts(t, b.db)
}

// waitUntil waits until cond holds, showing the status counts if it never does.
func (b *testBundle) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	pipelinetest.WaitFor(t, waitTimeout, cond, func() string { return fmt.Sprintf("%s; statuses %v", what, b.counts(t)) })
}

// waitDelivered waits until the receiver has accepted at least n distinct notifications.
func (b *testBundle) waitDelivered(t *testing.T, n int) {
	t.Helper()
	b.waitUntil(t, fmt.Sprintf("waiting for %d notifications to reach the receiver", n), func() bool {
		_, distinct, _ := b.pipeline.Receiver.Stats()
		return distinct >= n
	})
}

// waitTerminal waits until every one of n notifications is in a terminal state.
func (b *testBundle) waitTerminal(t *testing.T, n int) {
	t.Helper()
	b.waitUntil(t, fmt.Sprintf("waiting for %d notifications to finish", n), func() bool {
		c := b.counts(t)
		return c["delivered"]+c["failed"]+c["cancelled"]+c["expired"] == n
	})
}

// sending counts the notifications being sent right now, of priority when it is not empty.
func (b *testBundle) sending(t *testing.T, priority notification.Priority) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.QueryRow(context.Background(),
		"select count(*) from notifications where status = 'sending' and ($1 = '' or priority = $1)", string(priority)).Scan(&n))
	return n
}

// spanning counts the notifications with an attempt that started at or before at and ended at
// or after it: the sends a fault at that moment interrupted.
func (b *testBundle) spanning(t *testing.T, at time.Time) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.QueryRow(context.Background(), `
		select count(distinct notification_id) from delivery_attempts
		where started_at <= $1 and started_at + duration_ms * interval '1 millisecond' >= $1`, at).Scan(&n))
	return n
}

// checkOutcome checks that every notification of ids was delivered and reached the receiver,
// none lost, and that the receiver got at most midSend deliveries more than there are
// notifications.
func (b *testBundle) checkOutcome(t *testing.T, ids []string, midSend int) {
	t.Helper()
	n := len(ids)
	require.Equal(t, map[string]int{"delivered": n}, b.counts(t), "every notification delivered")
	total, distinct, invalid := b.pipeline.Receiver.Stats()
	require.Equal(t, n, distinct, "every notification reached the receiver")
	require.Zero(t, invalid, "deliveries with a bad signature")
	for _, id := range ids {
		require.NotZero(t, b.pipeline.Receiver.Count(id), "notification %s never reached the receiver", id)
	}
	t.Logf("%d notifications, %d deliveries: %d duplicates; %d sends were interrupted by the fault", n, total, total-distinct, midSend)
	require.LessOrEqual(t, total-distinct, midSend, "duplicates beyond the sends the fault interrupted")
}

// breakMidRun sends 1000 notifications to a receiver that takes delay to answer each, and
// calls fault once 200 have reached it. When the posts are done it lets the receiver answer at
// once, waits until every notification finished, and checks the outcome, allowing a duplicate
// for each send the fault interrupted.
func (b *testBundle) breakMidRun(t *testing.T, delay time.Duration, fault func()) {
	t.Helper()
	b.pipeline.Receiver.Delay(delay)
	wait := b.sendInBackground(t, 0, 1000)
	b.waitDelivered(t, 200)
	at := time.Now()
	before := b.sending(t, "")
	fault()

	ids := wait()
	b.pipeline.Receiver.Delay(0)
	b.waitTerminal(t, len(ids))
	b.checkOutcome(t, ids, before+b.spanning(t, at))
}

// TestRedisFlushed: Redis loses everything (FLUSHALL) mid-run, streams, groups and pending
// entries alike. The notifications whose entries were lost stay queued in PostgreSQL and cron's
// recover job enqueues them again; the stream sources create their groups again.
func TestRedisFlushed(t *testing.T) {
	t.Parallel()
	srv := pulsetest.StartRedis(t)
	b := setup(t, srv)
	// A slow receiver builds a backlog, so the flush finds entries waiting and pending.
	b.breakMidRun(t, 200*time.Millisecond, func() {
		require.NoError(t, b.redis.FlushAll(context.Background()).Err())
		c := b.counts(t)
		t.Logf("flushed Redis with statuses %v", c)
		require.NotZero(t, c["queued"]+c["sending"], "the flush hit mid-run: entries waiting or pending were lost")
	})
}

// TestConsumerGroupDestroyed: the stream sources' consumer group is destroyed mid-run, as
// Knative's RedisStreamSource does when it shuts down, losing every pending entry.
func TestConsumerGroupDestroyed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.breakMidRun(t, 100*time.Millisecond, func() {
		pending := 0
		for _, p := range notification.Priorities {
			stream := b.keys.Stream(string(p))
			groups, err := b.redis.XInfoGroups(context.Background(), stream).Result()
			require.NoError(t, err)
			for _, g := range groups {
				pending += int(g.Pending)
				require.NoError(t, b.redis.XGroupDestroy(context.Background(), stream, g.Name).Err())
			}
		}
		c := b.counts(t)
		t.Logf("destroyed the groups with %d entries pending and statuses %v", pending, c)
		require.NotZero(t, pending, "the fault hit mid-run: pending entries were lost")
	})
}

// TestDeliverKilledMidSend: deliver-high is killed (SIGKILL) while it is sending, as when a pod
// dies, and a new one starts. The notifications it had claimed stay sending until their lease
// runs out; cron's recover job hands them back for another attempt.
func TestDeliverKilledMidSend(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// A slow receiver keeps many sends in flight when the kill comes.
	b.pipeline.Receiver.Delay(200 * time.Millisecond)

	wait := b.sendInBackground(t, 0, 1000)
	b.waitDelivered(t, 50)
	b.waitUntil(t, "waiting for deliver-high to be sending", func() bool { return b.sending(t, notification.High) >= 10 })
	deliver := b.pipeline.Process("deliver-high")
	deliver.Kill()
	// Claims of the dead process that were never recorded: the sends it was in.
	midSend := b.sending(t, notification.High)
	t.Logf("killed deliver-high while sending %d notifications; statuses %v", midSend, b.counts(t))
	require.NotZero(t, midSend)

	b.pipeline.Receiver.Delay(0)
	deliver.Start()
	ids := wait()
	b.waitTerminal(t, len(ids))
	b.checkOutcome(t, ids, midSend)
	var retried int
	require.NoError(t, b.db.QueryRow(context.Background(),
		"select count(*) from notifications where priority = 'high' and attempts > 1").Scan(&retried))
	// Not every one of midSend: a claim or an outcome the process sent just before it died may
	// still commit after the count.
	require.NotZero(t, retried, "the interrupted sends were tried again")
}

// TestReceiverDownThenBack: the webhook receiver goes away for a while, then comes back. Sends
// fail as transient, are retried on the backoff schedule by cron's release job, and succeed
// once it is back.
func TestReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.pipeline.Receiver.Delay(20 * time.Millisecond)

	ids := b.send(t, 0, 600, time.Time{})
	b.waitDelivered(t, 100)
	receiver := b.pipeline.ReceiverServer()
	at := time.Now()
	receiver.Stop()
	ids = append(ids, b.send(t, 600, 400, time.Time{})...)
	b.waitUntil(t, "waiting for sends to fail while the receiver is down", func() bool {
		var retried int
		require.NoError(t, b.db.QueryRow(context.Background(),
			"select count(*) from notifications where attempts >= 2 and status <> 'delivered'").Scan(&retried))
		return retried >= 50
	})
	t.Logf("receiver down; statuses %v", b.counts(t))
	receiver.Start()
	b.pipeline.Receiver.Delay(0)

	b.waitTerminal(t, len(ids))
	b.checkOutcome(t, ids, b.spanning(t, at))
	var retried int
	require.NoError(t, b.db.QueryRow(context.Background(),
		"select count(*) from notifications where attempts > 1").Scan(&retried))
	require.GreaterOrEqual(t, retried, 50, "notifications that failed while the receiver was down were retried")
}

// TestCronTicksMissed: no cron tick comes for a while (the PingSources' adapter is down):
// scheduled sends fall due and failed sends' retries fall due, and nothing moves. When the
// ticks resume, the first runs catch up and everything is delivered, once.
func TestCronTicksMissed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.pipeline.PauseCron()
	b.pipeline.Receiver.Fail(http.StatusServiceUnavailable)

	posting := time.Now()
	ids := b.send(t, 0, 500, time.Time{})
	// Ingest queues a send_at already past at once: leave room for the posts themselves, three
	// times what the first 500 took (a busy machine posts slowly), and at least five seconds.
	sendAt := time.Now().Add(max(5*time.Second, 3*time.Since(posting)))
	ids = append(ids, b.send(t, 500, 500, sendAt)...)
	require.Less(t, time.Now(), sendAt, "posting took longer than the room left for it")
	b.waitUntil(t, "waiting for every first attempt to fail", func() bool { return b.counts(t)["retrying"] == 500 })
	// Let the missed ticks pile up: every retry and every scheduled send is due a second ago.
	var lastDue time.Time
	require.NoError(t, b.db.QueryRow(context.Background(),
		"select max(next_attempt_at) from notifications where status = 'retrying'").Scan(&lastDue))
	for _, due := range []time.Time{lastDue, sendAt} {
		if wait := time.Until(due.Add(time.Second)); wait > 0 {
			// Waiting for the clock, not for work: nothing is expected to happen meanwhile.
			time.Sleep(wait)
		}
	}
	require.Equal(t, map[string]int{"retrying": 500, "scheduled": 500}, b.counts(t), "nothing moves without ticks, nothing is lost")

	b.pipeline.Receiver.Fail(0)
	b.pipeline.ResumeCron()
	b.waitTerminal(t, len(ids))
	b.checkOutcome(t, ids, 0)
	var early int
	require.NoError(t, b.db.QueryRow(context.Background(),
		"select count(*) from notifications where send_at is not null and delivered_at < send_at").Scan(&early))
	require.Zero(t, early, "no scheduled send delivered before its send_at")
}
