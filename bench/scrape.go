package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-knative/pulse/bench/proc"
	"github.com/pulse-knative/pulse/bench/stats"
)

// fillSource is the CloudEvent source of the rows a fill inserts; the figures of a run leave
// them out.
const fillSource = "urn:pulse:bench:fill"

// fillChunk is the number of rows one statement of the scrape table's fill inserts.
const fillChunk = 250_000

// fillRows inserts notifications first..last-1 in the mix a long-running installation has:
// 96% delivered, 3% failed, then expired, cancelled, retrying and scheduled, four channels,
// finished over the last 30 days. Ids and event ids grow with i, as Pulse's time-ordered
// UUIDv7 ids do, so the indexes fill at their right edge as they do in production.
const fillRows = `
insert into notifications (id, source, event_id, channel, priority, status, recipient, data, attempts,
	max_attempts, send_at, next_attempt_at, created_at, queued_at, sending_at, delivered_at, failed_at,
	expired_at, cancelled_at, finished_at, updated_at)
select ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, '` + fillSource + `',
	'fill-' || lpad(i::text, 10, '0'), (array['webhook', 'email', 'sms', 'push'])[1 + i % 4],
	case when i % 5 = 0 then 'low' else 'high' end, s.status, 'https://hooks.example.com/in', '{"n":1}'::jsonb,
	1, 8,
	case when s.status = 'scheduled' then now() + interval '1 hour' end,
	case when s.status = 'retrying' then now() + interval '1 hour' end,
	s.t, s.t, s.t,
	case when s.status = 'delivered' then s.t + interval '1 second' end,
	case when s.status = 'failed' then s.t + interval '1 second' end,
	case when s.status = 'expired' then s.t + interval '1 second' end,
	case when s.status = 'cancelled' then s.t + interval '1 second' end,
	case when s.status in ('delivered', 'failed', 'expired', 'cancelled') then s.t + interval '1 second' end,
	s.t
from generate_series($1::bigint, $2::bigint - 1) as i,
	lateral (select case
		when i % 1000 < 960 then 'delivered' when i % 1000 < 990 then 'failed'
		when i % 1000 < 995 then 'expired' when i % 1000 < 998 then 'cancelled'
		when i % 1000 < 999 then 'retrying' else 'scheduled' end as status,
		now() - (i % 2592000) * interval '1 second' as t) as s`

var collectorFailed = regexp.MustCompile(`(?m)^pulse_scrape_collector_success\{[^}]*\} 0$`)

// scrapeTable is a schema filled once with a given number of rows and scraped by every
// repetition of its scenario.
type scrapeTable struct {
	once sync.Once
	env  *runEnv
	err  error
	fill time.Duration
}

func (h *Harness) scrapeScenarios() []scenario {
	var out []scenario
	for _, rows := range h.opts.ScrapeRows {
		name := "scrape-" + rowsName(rows)
		sc := scenario{
			Name: name, Group: "Metrics scrape",
			Title:  fmt.Sprintf("GET /metrics of the metrics function, %s notifications in the table, %d scrapes one after another", rowsName(rows), h.opts.Scrapes),
			Unit:   "scrapes/s",
			Target: "cheap at 10M rows",
		}
		if !h.built["metrics"] {
			sc.skip = firstOf(h.buildErrors["metrics"], "functions/metrics is not in the repository yet")
			out = append(out, sc)
			continue
		}
		table := &scrapeTable{}
		h.cleanups = append(h.cleanups, func() {
			if table.env != nil {
				table.env.close()
			}
		})
		sc.run = func(ctx context.Context, rep int, profile bool) (Run, error) {
			table.once.Do(func() { table.env, table.fill, table.err = h.fillTable(ctx, rows) })
			if table.err != nil {
				return Run{}, table.err
			}
			r, err := h.runScrape(ctx, table.env, profile)
			r.extra("rows", float64(rows))
			r.extra("fill_seconds", table.fill.Seconds())
			return r, err
		}
		out = append(out, sc)
	}
	return out
}

func rowsName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// fillTable makes a schema holding rows notifications, the count tables rolled up, and
// statistics up to date.
func (h *Harness) fillTable(ctx context.Context, rows int) (*runEnv, time.Duration, error) {
	start := time.Now()
	e, err := h.newEnv(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := e.fill(ctx, rows); err != nil {
		e.close()
		return nil, 0, err
	}
	h.logf("filled %s rows in %s", rowsName(rows), time.Since(start).Round(time.Second))
	return e, time.Since(start), nil
}

// fill inserts rows notifications of fillRows into the run's schema and brings the
// table's statistics up to date.
func (e *runEnv) fill(ctx context.Context, rows int) error {
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Only the fill's commits: the measured runs keep the server's setting.
	if _, err := conn.Exec(ctx, "set synchronous_commit = off"); err != nil {
		return err
	}
	for first := 0; first < rows; first += fillChunk {
		if _, err := conn.Exec(ctx, fillRows, first, min(first+fillChunk, rows)); err != nil {
			return fmt.Errorf("fill %d rows: %w", rows, err)
		}
	}
	if _, err := conn.Exec(ctx, "vacuum analyze notifications"); err != nil {
		return fmt.Errorf("vacuum analyze the fill: %w", err)
	}
	return nil
}

// runScrape starts the metrics function on a filled table, scrapes until the count changes
// the fill left are rolled up, then times Scrapes scrapes.
func (h *Harness) runScrape(ctx context.Context, e *runEnv, profile bool) (Run, error) {
	k := h.opts.Scrapes
	r := Run{N: k}
	p, err := e.start(ctx, "metrics", "metrics", nil, profile)
	if err != nil {
		return r, err
	}
	defer p.Stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Port)
	client := &http.Client{Timeout: time.Minute}
	scrape := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return took, err
		}
		if resp.StatusCode != http.StatusOK {
			return took, fmt.Errorf("status %d", resp.StatusCode)
		}
		if m := collectorFailed.FindAll(body, -1); len(m) > 0 {
			return took, fmt.Errorf("%d collectors failed: %s", len(m), m[0])
		}
		return took, nil
	}
	first, err := scrape()
	if err != nil {
		return r, fmt.Errorf("first scrape: %w", err)
	}
	r.extra("first_scrape_ms", ms(first))
	for range 200 {
		var pending int
		if err := e.pool.QueryRow(ctx, "select count(*) from notification_count_changes").Scan(&pending); err != nil || pending == 0 {
			break
		}
		if _, err := scrape(); err != nil {
			return r, err
		}
	}
	w, err := h.begin(ctx, []*proc.Process{p}, profile)
	if err != nil {
		return r, err
	}
	var ds []time.Duration
	start := time.Now()
	for range k {
		d, err := scrape()
		if err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
		}
		ds = append(ds, d)
	}
	wall := time.Since(start)
	m := w.end(ctx, k)
	r.absorb(m)
	r.Throughput = float64(k) / wall.Seconds()
	r.Latency = stats.Latencies(ds)
	return r, nil
}
