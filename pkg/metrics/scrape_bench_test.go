package metrics_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/metrics"
)

// benchRowsVar sets how many notifications BenchmarkScrape fills its table with.
const benchRowsVar = "PULSE_BENCH_SCRAPE_ROWS"

// benchFill inserts notifications $1..$2-1 in the mix of a long-running installation: 96%
// delivered, 3% failed, then expired, cancelled, retrying (half of them past due), scheduled,
// queued and sending; four channels; finished over the last 30 days, so a few thousand in the
// failure window.
const benchFill = `
insert into notifications (id, source, event_id, channel, priority, status, recipient, max_attempts, attempts,
	send_at, next_attempt_at, lease_until, created_at, queued_at, finished_at, updated_at)
select gen_random_uuid(), 'bench', 'fill-' || i, (array['webhook', 'email', 'sms', 'push'])[1 + i % 4],
	case when i % 5 = 0 then 'low' else 'high' end, s.status, 'https://hooks.example.com/in', 8, 1,
	case when s.status = 'scheduled' then now() + interval '1 hour' end,
	case when s.status = 'retrying' then now() + (i % 600 - 300) * interval '1 second' end,
	case when s.status = 'sending' then now() + interval '1 minute' end,
	s.t, s.t,
	case when s.status in ('delivered', 'failed', 'expired', 'cancelled') then s.t + interval '1 second' end,
	s.t
from generate_series($1::bigint, $2::bigint - 1) as i,
	lateral (select case
		when i % 10000 < 9600 then 'delivered' when i % 10000 < 9900 then 'failed'
		when i % 10000 < 9950 then 'expired' when i % 10000 < 9980 then 'cancelled'
		when i % 10000 < 9990 then 'retrying' when i % 10000 < 9995 then 'scheduled'
		when i % 10000 < 9998 then 'queued' else 'sending' end as status,
		now() - (i % 2592000) * interval '1 second' as t) as s`

// BenchmarkScrape times whole scrapes of the exporter (every collector, PostgreSQL and Redis)
// with ten million notifications in the table. Filling the table takes minutes and a few GB in
// a schema of its own on TEST_DATABASE_URL's server (dropped afterwards), so run it by hand:
//
//	go test -run '^$' -bench Scrape -benchtime 50x ./pkg/metrics/
//
// PULSE_BENCH_SCRAPE_ROWS sets another table size. "rolled-up" scrapes a table whose count
// changes were rolled up; "changes-pending" scrapes with 50 000 changes not rolled up yet, the
// worst a roll-up interval can leave when every notification finishes in a statement of its
// own at 5000 a second (the deliver functions' shared statements leave far fewer).
func BenchmarkScrape(b *testing.B) {
	rows := 10_000_000
	if v := os.Getenv(benchRowsVar); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, benchRowsVar)
		rows = n
	}
	ctx := context.Background()
	bundle := setup(b)
	pool := bundle.store.Pool()

	start := time.Now()
	conn, err := pool.Acquire(ctx)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "set synchronous_commit = off")
	require.NoError(b, err)
	const chunk = 500_000
	for first := 0; first < rows; first += chunk {
		_, err := conn.Exec(ctx, benchFill, first, min(first+chunk, rows))
		require.NoError(b, err)
	}
	conn.Release()
	_, err = pool.Exec(ctx, "vacuum analyze notifications")
	require.NoError(b, err)
	roller := metrics.NewRoller(metrics.RollerConfig{Store: bundle.store})
	_, err = roller.RollUp(ctx)
	require.NoError(b, err)
	b.Logf("filled %d notifications in %s", rows, time.Since(start).Round(time.Second))

	exporter := metrics.NewExporter(metrics.Config{
		Store: bundle.store, Redis: bundle.redis, Keys: bundle.keys, Group: group,
		ScrapeTimeout: 10 * time.Second, FailureWindow: 15 * time.Minute, PastDueAfter: time.Minute,
	})
	url := serve(b, exporter)
	check := func() {
		got := collectorSuccess(scrape(b, url, nil))
		for name, ok := range got {
			if ok != 1 {
				b.Fatalf("collector %s failed", name)
			}
		}
	}
	check()
	counts, err := bundle.store.StatusCounts(ctx)
	require.NoError(b, err)
	b.Logf("status counts: %v", counts)
	for _, m := range scrape(b, url, nil)["pulse_scrape_collector_duration_seconds"].GetMetric() {
		b.Logf("collector %s took %.1f ms", m.GetLabel()[0].GetValue(), 1000*m.GetGauge().GetValue())
	}

	b.Run("rolled-up", func(b *testing.B) {
		for b.Loop() {
			scrapeText(b, url, nil)
		}
		check()
	})
	b.Run("changes-pending", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			_, err := roller.RollUp(ctx)
			require.NoError(b, err)
			_, err = pool.Exec(ctx, `
				insert into notification_count_changes (status, channel, finished, delta)
				select 'delivered', 'webhook', date_bin('1 minute', now(), timestamptz 'epoch'), 1
				from generate_series(1, 50000)`)
			require.NoError(b, err)
			b.StartTimer()
			scrapeText(b, url, nil)
		}
		check()
	})
}
