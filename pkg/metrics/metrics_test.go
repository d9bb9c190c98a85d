package metrics_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// scrapeTime is the exporter's clock in these tests: ages and windows are measured from it.
var scrapeTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// group is the consumer group the tests' stream source would use.
const group = "pulse-deliver"

// collectorNames are the exporter's collectors.
var collectorNames = []string{"attempts", "dead_letter", "failure_rate", "latency", "past_due", "provider", "queue", "rollup", "status"}

type testBundle struct {
	store    *store.Store
	storeNow time.Time // the store's clock, which fixtures move
	redis    *redis.Client
	keys     queue.Keys
	recorder *recorder.Recorder
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{storeNow: scrapeTime}
	b.store = testfactory.Store(ctx, t, &testfactory.StoreOpts{Now: func() time.Time { return b.storeNow }, MaxConns: 8})

	redisURL, prefix := pulsetest.Redis(t)
	b.redis = newRedis(t, redisURL)
	b.keys = queue.NewKeys(prefix)
	b.recorder = recorder.New(b.redis, b.keys)
	return b
}

// newRedis returns a client of the Redis at url that honours context deadlines, as Run's does.
func newRedis(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

// exporter returns an exporter over the bundle's datastores with the default windows and the
// clock stopped at scrapeTime.
func (b *testBundle) exporter(mod ...func(*metrics.Config)) *metrics.Exporter {
	cfg := metrics.Config{
		Store: b.store, Redis: b.redis, Keys: b.keys, Group: group,
		ScrapeTimeout: 10 * time.Second, FailureWindow: 15 * time.Minute, PastDueAfter: time.Minute,
		Now: func() time.Time { return scrapeTime },
	}
	for _, m := range mod {
		m(&cfg)
	}
	return metrics.NewExporter(cfg)
}

// serve serves the exporter's handler on a test server and returns the scrape URL.
func serve(t testing.TB, e *metrics.Exporter) string {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler(e))
	t.Cleanup(srv.Close)
	return srv.URL + metrics.Path
}

// scrapeText fetches a scrape in the text exposition format.
func scrapeText(t testing.TB, url string, header http.Header) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}

// scrape fetches and parses a scrape.
func scrape(t testing.TB, url string, header http.Header) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(scrapeText(t, url, header)))
	require.NoError(t, err)
	return families
}

// flatten turns Pulse's families into "name{label="value",...}" -> value, one entry per sample
// as the text format lists them (histograms as _bucket, _sum and _count), values rounded to
// micro-units. The collectors' durations are left out: they differ every scrape.
func flatten(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	key := func(name string, labels []*dto.LabelPair, extra ...string) string {
		var parts []string
		for _, l := range labels {
			parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		parts = append(parts, extra...)
		sort.Strings(parts)
		return name + "{" + strings.Join(parts, ",") + "}"
	}
	round := func(v float64) float64 { return math.Round(v*1e6) / 1e6 }
	for name, mf := range families {
		if !strings.HasPrefix(name, "pulse_") || name == "pulse_scrape_collector_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[key(name, m.GetLabel())] = round(m.GetGauge().GetValue())
			case dto.MetricType_COUNTER:
				out[key(name, m.GetLabel())] = round(m.GetCounter().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, bk := range h.GetBucket() {
					le := strconv.FormatFloat(bk.GetUpperBound(), 'g', -1, 64)
					out[key(name+"_bucket", m.GetLabel(), fmt.Sprintf("le=%q", le))] = float64(bk.GetCumulativeCount())
				}
				out[key(name+"_bucket", m.GetLabel(), `le="+Inf"`)] = float64(h.GetSampleCount())
				out[key(name+"_sum", m.GetLabel())] = round(h.GetSampleSum())
				out[key(name+"_count", m.GetLabel())] = float64(h.GetSampleCount())
			default:
				out[key(name, m.GetLabel())] = math.NaN()
			}
		}
	}
	return out
}

// fixture is the known state TestScrapeReportsEveryMetric, the Prometheus test and the status
// page tests read. Times are relative to scrapeTime (T). Every notification carries
// fixtureBody and goes to its channel's fixtureRecipients address; failed ones record
// fixtureErrors.
//
// PostgreSQL:
//   - T-60m: 3 push/high scheduled for T+1h, T-2m (past due) and T-30s (due, not past due yet)
//   - T-30m: 1 sms/low delivered (outside the 15 min failure window)
//   - T-20m: 1 email/low cancelled
//   - T-10m: 1 email/low expiring at T-8m, expired at T-7m; 3 webhook/high failing once, due
//     again at T-5m (past due), T+1m and T+10m
//   - T-5m: 4 email/high, 3 delivered and 1 failed
//   - T-3m: 1 sms/low failed
//   - T-1m: 4 push/low queued, 1 of them claimed (sending)
//
// Redis:
//   - high stream: 6 entries added at T-60s ... T-10s; the group read 4, acknowledged the
//     first and moved the second to the dead-letter stream: 2 pending (the oldest T-40s) and
//     2 unread
//   - low stream: 3 entries added at T-90s, T-80s, T-70s and no group yet
//   - attempts: email/high 3 delivered (0.2 s, 0.2 s, 4 s) and 1 permanent; sms/low 1
//     delivered (30 min), 1 permanent, 2 transient
func (b *testBundle) fixture(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	at := func(d time.Duration) *time.Time { v := scrapeTime.Add(d); return &v }
	seq := 0
	request := func(ch notification.Channel, p notification.Priority) store.NewNotification {
		seq++
		r := notification.Request{Channel: ch, Priority: p, To: fixtureRecipients[ch], Subject: fixtureSubject, Body: fixtureBody}
		return store.NewNotification{Source: "fixture", EventID: strconv.Itoa(seq), MaxAttempts: 3, Request: r}
	}
	insert := func(reqs ...store.NewNotification) []string {
		acc, err := b.store.Insert(ctx, reqs)
		require.NoError(t, err)
		ids := make([]string, len(acc))
		for i, a := range acc {
			ids[i] = a.ID
		}
		return ids
	}
	finish := func(id string, status notification.Status, next *time.Time) {
		n, err := b.store.Claim(ctx, id, time.Minute)
		require.NoError(t, err)
		outcome := map[notification.Status]string{notification.Delivered: "delivered", notification.Failed: "permanent",
			notification.Retrying: "transient"}[status]
		a := store.Attempt{NotificationID: id, Attempt: n.Attempts, Status: status, Outcome: outcome,
			NextAttemptAt: next, StartedAt: b.storeNow}
		if status == notification.Failed {
			a.Error = fixtureErrors[n.Channel]
		}
		require.NoError(t, b.store.Record(ctx, a))
	}

	b.storeNow = *at(-60 * time.Minute)
	var scheduled []store.NewNotification
	for _, sendAt := range []*time.Time{at(time.Hour), at(-2 * time.Minute), at(-30 * time.Second)} {
		r := request(notification.Push, notification.High)
		r.Request.SendAt = sendAt
		scheduled = append(scheduled, r)
	}
	insert(scheduled...)

	b.storeNow = *at(-30 * time.Minute)
	finish(insert(request(notification.SMS, notification.Low))[0], notification.Delivered, nil)

	b.storeNow = *at(-20 * time.Minute)
	_, err := b.store.Cancel(ctx, insert(request(notification.Email, notification.Low))[0])
	require.NoError(t, err)

	b.storeNow = *at(-10 * time.Minute)
	expiring := request(notification.Email, notification.Low)
	expiring.Request.ExpiresAt = at(-8 * time.Minute)
	insert(expiring)
	for _, next := range []*time.Time{at(-5 * time.Minute), at(time.Minute), at(10 * time.Minute)} {
		finish(insert(request(notification.Webhook, notification.High))[0], notification.Retrying, next)
	}

	b.storeNow = *at(-7 * time.Minute)
	expired, err := b.store.Expire(ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, expired)

	b.storeNow = *at(-5 * time.Minute)
	emails := insert(request(notification.Email, notification.High), request(notification.Email, notification.High),
		request(notification.Email, notification.High), request(notification.Email, notification.High))
	for i, id := range emails {
		status := notification.Delivered
		if i == 3 {
			status = notification.Failed
		}
		finish(id, status, nil)
	}

	b.storeNow = *at(-3 * time.Minute)
	finish(insert(request(notification.SMS, notification.Low))[0], notification.Failed, nil)

	b.storeNow = *at(-1 * time.Minute)
	pushes := insert(request(notification.Push, notification.Low), request(notification.Push, notification.Low),
		request(notification.Push, notification.Low), request(notification.Push, notification.Low))
	_, err = b.store.Claim(ctx, pushes[0], time.Minute)
	require.NoError(t, err)

	// The high stream, read by the group.
	high := b.keys.Stream(string(notification.High))
	var highIDs []string
	for i := range 6 {
		id := entryID(scrapeTime.Add(-time.Duration(60-10*i) * time.Second))
		require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: high, ID: id,
			Values: []string{queue.FieldNotificationID, "n" + strconv.Itoa(i)}}).Err())
		highIDs = append(highIDs, id)
	}
	g := queue.NewGroup(b.redis, b.keys, string(notification.High), group, "consumer-1")
	require.NoError(t, g.Create(ctx))
	read, err := g.Read(ctx, 4, time.Millisecond)
	require.NoError(t, err)
	require.Len(t, read, 4)
	require.NoError(t, g.Ack(ctx, highIDs[0]))
	moved, err := g.DeadLetter(ctx, highIDs[1], "sink answered 500", 0, scrapeTime)
	require.NoError(t, err)
	require.True(t, moved)

	// The low stream, whose group does not exist yet.
	low := b.keys.Stream(string(notification.Low))
	for _, ago := range []time.Duration{90, 80, 70} {
		require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: low, ID: entryID(scrapeTime.Add(-ago * time.Second)),
			Values: []string{queue.FieldNotificationID, "x"}}).Err())
	}

	// What the deliver functions recorded.
	for _, latency := range []time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 4 * time.Second} {
		require.NoError(t, b.recorder.Attempt(ctx, "email", "high", "delivered", latency, true))
	}
	require.NoError(t, b.recorder.Attempt(ctx, "email", "high", "permanent", 0, false))
	require.NoError(t, b.recorder.Attempt(ctx, "sms", "low", "delivered", 30*time.Minute, true))
	require.NoError(t, b.recorder.Attempt(ctx, "sms", "low", "permanent", 0, false))
	require.NoError(t, b.recorder.Attempt(ctx, "sms", "low", "transient", 0, false))
	require.NoError(t, b.recorder.Attempt(ctx, "sms", "low", "transient", 0, false))

	// What the deliver pods reported of their provider accounts: the primary SMTP relay's
	// breaker is open (until after the scrape), the backup's closed; the primary's rate limit
	// held back three sends.
	require.NoError(t, b.recorder.Breaker(ctx, "email", "primary", "pod-a", 2, scrapeTime.Add(time.Hour)))
	require.NoError(t, b.recorder.Breaker(ctx, "email", "backup", "pod-a", 0, time.Time{}))
	for range 3 {
		require.NoError(t, b.recorder.Throttled(ctx, "email", "primary"))
	}
}

// What the fixture's notifications hold, which the status pages must never show whole.
const (
	fixtureSecret  = "s3cr3t-hook-token"
	fixtureSubject = "Your order has shipped"
	fixtureBody    = "Your one-time code is 918273"
)

// fixtureRecipients are the fixture's addresses, by channel.
var fixtureRecipients = map[notification.Channel]string{
	notification.Email:   "someone@example.com",
	notification.SMS:     "+15555550123",
	notification.Push:    "dGhpcyBpcyBhIGRldmljZSB0b2tlbg",
	notification.Webhook: "https://hooks.example.com/services/" + fixtureSecret,
}

// fixtureErrors are the errors the fixture's failed notifications record, by channel; the SMS
// one is longer than the status pages show.
var fixtureErrors = map[notification.Channel]string{
	notification.Email: "send email: 550 5.1.1 mailbox unavailable",
	notification.SMS:   "send sms: provider answered 400: " + strings.Repeat("invalid number ", 40),
}

// entryID is the stream id of the first entry added at t.
func entryID(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10) + "-0"
}

// fixtureChanges is how many changes to the maintained counts the fixture leaves to roll up: a
// row per state, channel and minute each of its statements changed. Its 10 inserts add one
// each; its 10 claims, 9 records, 1 cancel and 1 expiry take one away and add one each.
const fixtureChanges = 10 + 2*(10+9+1+1)

// fixtureMetrics is every sample the fixture must give, durations aside, with pending changes
// to the maintained counts not rolled up yet.
func fixtureMetrics(pending int) map[string]float64 {
	want := map[string]float64{
		`pulse_notification_count_changes_pending{}`: float64(pending),

		`pulse_queue_length{queue_name="high_priority"}`:             4,
		`pulse_queue_length{queue_name="low_priority"}`:              3,
		`pulse_celery_queue_length{queue_name="high_priority"}`:      4,
		`pulse_celery_queue_length{queue_name="low_priority"}`:       3,
		`pulse_queue_oldest_age_seconds{queue_name="high_priority"}`: 40,
		`pulse_queue_oldest_age_seconds{queue_name="low_priority"}`:  90,
		`pulse_dead_letter_length{queue_name="high_priority"}`:       1,
		`pulse_dead_letter_length{queue_name="low_priority"}`:        0,

		`pulse_notifications_by_status{status="scheduled"}`: 3,
		`pulse_notifications_by_status{status="queued"}`:    3,
		`pulse_notifications_by_status{status="sending"}`:   1,
		`pulse_notifications_by_status{status="retrying"}`:  3,
		`pulse_notifications_by_status{status="delivered"}`: 4,
		`pulse_notifications_by_status{status="failed"}`:    2,
		`pulse_notifications_by_status{status="cancelled"}`: 1,
		`pulse_notifications_by_status{status="expired"}`:   1,

		`pulse_notifications_past_due{}`: 2,

		`pulse_notification_failure_rate{channel="email"}`:   25,
		`pulse_notification_failure_rate{channel="sms"}`:     100,
		`pulse_notification_failure_rate{channel="push"}`:    0,
		`pulse_notification_failure_rate{channel="webhook"}`: 0,

		`pulse_provider_breaker_state{account="primary",channel="email"}`: 2,
		`pulse_provider_breaker_state{account="backup",channel="email"}`:  0,
		`pulse_provider_throttled_total{provider="email/primary"}`:        3,
	}
	for _, name := range collectorNames {
		want[fmt.Sprintf(`pulse_scrape_collector_success{collector=%q}`, name)] = 1
	}
	attempts := map[string]float64{
		"email:high:delivered": 3, "email:high:permanent": 1,
		"sms:low:delivered": 1, "sms:low:permanent": 1, "sms:low:transient": 2,
	}
	for _, ch := range notification.Channels {
		for _, p := range notification.Priorities {
			for _, o := range []string{"delivered", "transient", "permanent"} {
				want[fmt.Sprintf(`pulse_delivery_attempts_total{channel=%q,outcome=%q,priority=%q}`, ch, o, p)] =
					attempts[fmt.Sprintf("%s:%s:%s", ch, p, o)]
			}
			// Per bucket alone, then made cumulative.
			perBucket, sum := map[float64]float64{}, 0.0
			switch {
			case ch == notification.Email && p == notification.High:
				perBucket[0.25], perBucket[5], sum = 2, 1, 4.4
			case ch == notification.SMS && p == notification.Low:
				perBucket[1800], sum = 1, 1800
			}
			var running float64
			for _, le := range recorder.LatencyBuckets {
				running += perBucket[le]
				want[fmt.Sprintf(`pulse_notification_delivery_latency_seconds_bucket{channel=%q,le=%q,priority=%q}`,
					ch, strconv.FormatFloat(le, 'g', -1, 64), p)] = running
			}
			want[fmt.Sprintf(`pulse_notification_delivery_latency_seconds_bucket{channel=%q,le="+Inf",priority=%q}`, ch, p)] = running
			want[fmt.Sprintf(`pulse_notification_delivery_latency_seconds_sum{channel=%q,priority=%q}`, ch, p)] = sum
			want[fmt.Sprintf(`pulse_notification_delivery_latency_seconds_count{channel=%q,priority=%q}`, ch, p)] = running
		}
	}
	return want
}

func TestScrapeReportsEveryMetric(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fixture(t)
	url := serve(t, b.exporter())

	// Before and after the roller rolls the changes to the status counts up: the counts
	// read the same.
	roller := metrics.NewRoller(metrics.RollerConfig{Store: b.store, Batch: 3, Now: func() time.Time { return scrapeTime }})
	for i, pending := range []int{fixtureChanges, 0} {
		if i == 1 {
			rolled, err := roller.RollUp(context.Background())
			require.NoError(t, err)
			require.Equal(t, fixtureChanges, rolled, "rolled up in batches of 3 until none was left")
		}
		families := scrape(t, url, nil)
		if diff := cmp.Diff(fixtureMetrics(pending), flatten(families)); diff != "" {
			t.Fatalf("scrape %d (-want +got):\n%s", i+1, diff)
		}
		durations := families["pulse_scrape_collector_duration_seconds"].GetMetric()
		require.Len(t, durations, len(collectorNames))
		for _, m := range durations {
			require.Greater(t, m.GetGauge().GetValue(), 0.0)
		}
		require.Contains(t, families, "go_goroutines", "the Go collector is registered beside Pulse's")
	}
}

func TestRollerRunsUntilStopped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := b.store.Pool()
	// Enough changes that the round vacuums the count tables afterwards; they cancel out.
	_, err := pool.Exec(ctx, `
		insert into notification_count_changes (status, channel, finished, delta)
		select 'queued', 'sms', '-infinity', case when i % 2 = 0 then 1 else -1 end
		from generate_series(1, 2000) as i`)
	require.NoError(t, err)

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		metrics.NewRoller(metrics.RollerConfig{Store: b.store, Batch: 500, Interval: time.Hour}).Run(ctx)
	}()
	// Its first round starts at once: wait for it to empty and vacuum the changes.
	waitFor(t, "the roller's first round", func() error {
		select {
		case <-stopped:
			t.Fatal("the roller returned before it was stopped")
		default:
		}
		n, err := b.store.CountPendingChanges(ctx)
		require.NoError(t, err)
		var vacuums int64
		require.NoError(t, pool.QueryRow(ctx, `select coalesce(sum(vacuum_count), 0)::bigint from pg_stat_user_tables
			where schemaname = current_schema() and relname = 'notification_count_changes'`).Scan(&vacuums))
		if n > 0 || vacuums == 0 {
			return fmt.Errorf("%d changes pending, %d vacuums", n, vacuums)
		}
		return nil
	})
	cancel()
	<-stopped
	counts, err := b.store.StatusCounts(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 4, counts["delivered"])
	require.EqualValues(t, 3, counts["queued"])
}

func TestQueueLength(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ago := func(s int) string { return entryID(scrapeTime.Add(-time.Duration(s) * time.Second)) }

	for name, tc := range map[string]struct {
		prepare    func(t *testing.T, b *testBundle, stream string)
		length     float64
		oldestSecs float64
	}{
		"no stream": {
			prepare: func(*testing.T, *testBundle, string) {},
		},
		"empty stream with its group": {
			prepare: func(t *testing.T, b *testBundle, stream string) {
				require.NoError(t, queue.NewGroup(b.redis, b.keys, "high", group, "c").Create(ctx))
			},
		},
		"group read nothing yet": {
			prepare: func(t *testing.T, b *testBundle, stream string) {
				for _, s := range []int{30, 20} {
					require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: ago(s), Values: []string{"k", "v"}}).Err())
				}
				require.NoError(t, queue.NewGroup(b.redis, b.keys, "high", group, "c").Create(ctx))
			},
			length: 2, oldestSecs: 30,
		},
		"everything acknowledged, not trimmed": {
			prepare: func(t *testing.T, b *testBundle, stream string) {
				g := queue.NewGroup(b.redis, b.keys, "high", group, "c")
				require.NoError(t, g.Create(ctx))
				for _, s := range []int{30, 20} {
					require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: ago(s), Values: []string{"k", "v"}}).Err())
				}
				read, err := g.Read(ctx, 10, time.Millisecond)
				require.NoError(t, err)
				require.NoError(t, g.Ack(ctx, read[0].ID, read[1].ID))
			},
		},
		"only another group": {
			prepare: func(t *testing.T, b *testBundle, stream string) {
				g := queue.NewGroup(b.redis, b.keys, "high", "someone-else", "c")
				require.NoError(t, g.Create(ctx))
				for _, s := range []int{30, 20, 10} {
					require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: ago(s), Values: []string{"k", "v"}}).Err())
				}
				read, err := g.Read(ctx, 10, time.Millisecond)
				require.NoError(t, err)
				require.NoError(t, g.Ack(ctx, read[0].ID))
			},
			length: 3, oldestSecs: 30,
		},
		// XDEL after the group's position leaves Redis unable to tell the lag: the entries
		// are counted instead.
		"lag unknown after XDEL": {
			prepare: func(t *testing.T, b *testBundle, stream string) {
				g := queue.NewGroup(b.redis, b.keys, "high", group, "c")
				require.NoError(t, g.Create(ctx))
				for s := 2500; s > 0; s-- {
					require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: ago(s), Values: []string{"k", "v"}}).Err())
				}
				_, err := g.Read(ctx, 1, time.Millisecond)
				require.NoError(t, err)
				require.NoError(t, b.redis.XDel(ctx, stream, ago(2000)).Err())
				groups, err := b.redis.XInfoGroups(ctx, stream).Result()
				require.NoError(t, err)
				require.EqualValues(t, -1, groups[0].Lag, "Redis tells the lag: the case is not tested")
			},
			length: 2498 + 1, oldestSecs: 2500,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			stream := b.keys.Stream("high")
			tc.prepare(t, b, stream)
			got := flatten(scrape(t, serve(t, b.exporter()), nil))
			require.Equal(t, tc.length, got[`pulse_queue_length{queue_name="high_priority"}`])
			require.Equal(t, tc.length, got[`pulse_celery_queue_length{queue_name="high_priority"}`], "the old name is an alias")
			require.Equal(t, tc.oldestSecs, got[`pulse_queue_oldest_age_seconds{queue_name="high_priority"}`])
			require.Equal(t, 0.0, got[`pulse_queue_length{queue_name="low_priority"}`])
			require.Equal(t, 1.0, got[`pulse_scrape_collector_success{collector="queue"}`])
		})
	}
}

// collectorSuccess returns each collector's pulse_scrape_collector_success.
func collectorSuccess(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range families["pulse_scrape_collector_success"].GetMetric() {
		out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	return out
}

func TestFailingDatastoreDoesNotBlankTheScrape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// What the collectors come to when Redis fails and PostgreSQL answers.
	redisFailed := map[string]float64{
		"queue": 0, "dead_letter": 0, "attempts": 0, "latency": 0, "provider": 0,
		"status": 1, "failure_rate": 1, "past_due": 1, "rollup": 1,
	}

	tests := map[string]struct {
		// fail points the exporter at the failing datastore.
		fail func(t *testing.T, c *metrics.Config)
		// header is sent with the scrape.
		header  http.Header
		success map[string]float64
		// kept is a metric the working datastore still reports, with its value; gone is a
		// family of the failing one, left out. Neither is checked when kept is empty.
		kept      string
		keptValue float64
		gone      string
		// within, when not zero, bounds how long each collector took, in seconds.
		within float64
	}{
		"PostgreSQL down": {
			fail: func(t *testing.T, c *metrics.Config) {
				down, err := store.Open(ctx, config.Database{URL: "postgres://pulse@127.0.0.1:1/pulse?sslmode=disable&connect_timeout=2"})
				require.NoError(t, err)
				t.Cleanup(down.Close)
				c.Store = down
			},
			success: map[string]float64{
				"queue": 1, "dead_letter": 1, "attempts": 1, "latency": 1, "provider": 1,
				"status": 0, "failure_rate": 0, "past_due": 0, "rollup": 0,
			},
			kept: `pulse_queue_length{queue_name="high_priority"}`, keptValue: 4, gone: "pulse_notifications_by_status",
		},
		"Redis down": {
			fail: func(t *testing.T, c *metrics.Config) {
				srv := pulsetest.StartRedis(t)
				srv.Stop()
				c.Redis = newRedis(t, srv.URL())
			},
			success: redisFailed,
			kept:    `pulse_notifications_by_status{status="delivered"}`, keptValue: 4, gone: "pulse_queue_length",
		},
		// A Redis that never answers: its collectors run out of time, and the scrape is served
		// within Prometheus's timeout, which is shorter than the exporter's.
		"Redis hangs": {
			fail: func(t *testing.T, c *metrics.Config) {
				srv := pulsetest.StartRedis(t)
				hung := newRedis(t, srv.URL())
				require.NoError(t, hung.Ping(ctx).Err())
				require.NoError(t, hung.Do(ctx, "CLIENT", "PAUSE", "60000", "ALL").Err())
				c.Redis = hung
				c.ScrapeTimeout = time.Minute
			},
			header:  http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"2"}},
			success: redisFailed,
			within:  3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.fixture(t)
			families := scrape(t, serve(t, b.exporter(func(c *metrics.Config) { tc.fail(t, c) })), tc.header)
			require.Equal(t, tc.success, collectorSuccess(families))
			if tc.kept != "" {
				require.Equal(t, tc.keptValue, flatten(families)[tc.kept])
				require.NotContains(t, families, tc.gone)
			}
			if tc.within > 0 {
				for _, m := range families["pulse_scrape_collector_duration_seconds"].GetMetric() {
					require.Less(t, m.GetGauge().GetValue(), tc.within, "collector %s", m.GetLabel()[0].GetValue())
				}
			}
		})
	}
}
