package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulse-knative/pulse/bench/loadgen"
	"github.com/pulse-knative/pulse/bench/pgstat"
	"github.com/pulse-knative/pulse/bench/proc"
	"github.com/pulse-knative/pulse/bench/stats"
	"github.com/pulse-knative/pulse/internal/devping"
)

const (
	// soakP99Drift is how much the p99 of the soak's last window may exceed its first's.
	soakP99Drift = 0.25
	// soakDensityDrift is how much a table's total size per live row (the most it has held so
	// far) may grow from the window ending half-way through the soak to the last window. The
	// first window is no reference: the table is filling, nothing is purged yet and autovacuum
	// (one round a minute at most, autovacuum_naptime) has not run, so it is much denser than
	// the working size it settles at once every row version is reclaimed. By half-way, a full
	// soak has run three purge periods and thirty vacuum rounds: the table should have reached
	// its working size and stay there, within the round-to-round swing of what vacuum has
	// reclaimed yet. Growth beyond a quarter is vacuum or purge falling behind.
	soakDensityDrift = 0.25
	// soakRSSDrift is how much a process's largest RSS of the last window may exceed that of
	// the first. The first window already runs at the soak's rate, so the Go heap has reached
	// its goal (twice the live heap) and the connection pools are full; what grows after that
	// is a leak, and one of a kilobyte per notification at a few hundred per second outgrows
	// 20 % of a 30 MB process within minutes.
	soakRSSDrift = 0.2
	// soakKeepUpSlack is the margin over what purge and trim leave at most, at the soak's rate,
	// before the live rows or a stream's length count as not kept up.
	soakKeepUpSlack = 0.25
)

// SoakRelation is one table or index of a soak sample.
type SoakRelation struct {
	Name string `json:"name"`
	// Table is the table an index belongs to (a table's own name for a table).
	Table string `json:"table"`
	Index bool   `json:"index"`
	// LiveTuples and DeadTuples are pg_stat_user_tables' estimates (tables only).
	LiveTuples int64 `json:"n_live_tup"`
	DeadTuples int64 `json:"n_dead_tup"`
	// Bytes is pg_relation_size; TotalBytes pg_total_relation_size (indexes and TOAST
	// included) for a table, the same as Bytes for an index.
	Bytes      int64 `json:"bytes"`
	TotalBytes int64 `json:"total_bytes"`
}

// SoakSample is what the soak saw over one sampling interval, ending At seconds into it.
type SoakSample struct {
	At float64 `json:"at_s"`
	// Delivered counts the notifications delivered in the interval; Latency is their
	// created_at to delivered_at.
	Delivered int           `json:"delivered"`
	Latency   stats.Latency `json:"latency"`
	// Relations are the run's tables and indexes at the end of the interval.
	Relations []SoakRelation `json:"relations"`
	// RedisUsedMemory is INFO memory's used_memory; Streams each of the run's streams' XLEN.
	RedisUsedMemory int64            `json:"redis_used_memory"`
	Streams         map[string]int64 `json:"streams"`
	// RSS is each Pulse process's VmRSS, in bytes.
	RSS map[string]int64 `json:"rss"`
	// BenchRSS is the bench process's own VmRSS (load generator, webhook sink, samplers), in
	// bytes, and BenchCPU the share of one core it used in the interval: it shares the
	// machine with Pulse, so its growth would be Pulse's latency.
	BenchRSS int64   `json:"bench_rss"`
	BenchCPU float64 `json:"bench_cpu"`
	// latencies are the interval's latencies in ms, for the windows' percentiles.
	latencies []float64
}

// SoakVerdict is one drift check of the soak.
type SoakVerdict struct {
	What   string `json:"what"`
	Figure string `json:"figure"`
	OK     bool   `json:"ok"`
}

// SoakResult is the soak: its settings, per-interval samples and verdicts.
type SoakResult struct {
	// Skipped says why the soak did not run; Error why it stopped early.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Rate is the offered rate, Base the flood rate it is half of and BaseFrom where that came
	// from.
	Rate     float64 `json:"rate_per_s"`
	Base     float64 `json:"base_per_s"`
	BaseFrom string  `json:"base_from"`
	// Seconds, SampleSeconds and HousekeepingSeconds are the soak's length, its sampling
	// interval and how often purge and trim ran (the longer of their periods);
	// RetentionSeconds is purge's retention.
	Seconds             float64 `json:"seconds"`
	SampleSeconds       float64 `json:"sample_seconds"`
	HousekeepingSeconds float64 `json:"housekeeping_seconds"`
	RetentionSeconds    float64 `json:"retention_seconds"`
	// Rewritten is set when purge and trim ran on the bench's period instead of the
	// manifest's schedules.
	Rewritten bool `json:"rewritten"`
	// Schedules are the cron jobs played, as name: schedule.
	Schedules []string `json:"schedules"`
	// Scrapes counts the metrics function's scrapes (every soakScrapeEvery, as Prometheus
	// would), ScrapeErrors those that failed, ScrapeLatency how long they took.
	Scrapes       int           `json:"scrapes"`
	ScrapeErrors  int           `json:"scrape_errors"`
	ScrapeLatency stats.Latency `json:"scrape_latency"`
	// Sent counts the requests sent, Accepted those ingest took, Errors failed requests plus
	// notifications not delivered by the end, Missing the latter alone; Duplicates counts the
	// deliveries the sink saw a second time (a repeat within the last sinkRemembers ids).
	Sent, Accepted, Errors, Missing, Duplicates int
	FirstError                                  string `json:"first_error,omitempty"`
	// Latency is over every delivery of the soak.
	Latency   stats.Latency    `json:"latency"`
	Postgres  pgstat.Result    `json:"postgres"`
	Samples   []SoakSample     `json:"samples"`
	Verdicts  []SoakVerdict    `json:"verdicts"`
	Processes []ProcessFigures `json:"processes"`
}

// housekeepingPeriod rounds want down to a period a cron schedule can express evenly (a
// divisor of a minute or of an hour), at least 10 s.
func housekeepingPeriod(want time.Duration) time.Duration {
	periods := []time.Duration{10 * time.Second, 15 * time.Second, 20 * time.Second, 30 * time.Second}
	for _, m := range []int{1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60} {
		periods = append(periods, time.Duration(m)*time.Minute)
	}
	best := periods[0]
	for _, p := range periods {
		if p <= want {
			best = p
		}
	}
	return best
}

// cronEvery is a six-field (seconds first) PingSource schedule firing every period, which
// housekeepingPeriod chose.
func cronEvery(period time.Duration) string {
	if period < time.Minute {
		return fmt.Sprintf("*/%d * * * * *", int(period.Seconds()))
	}
	if period == time.Hour {
		return "0 0 * * * *"
	}
	return fmt.Sprintf("0 */%d * * * *", int(period.Minutes()))
}

var scheduleLine = regexp.MustCompile(`(?m)^(\s*schedule:\s*).*$`)

// soakSchedules rewrites the PingSources of manifest (config/40-cron-schedules.yaml) so that
// the jobs named in every run on schedule; the others keep theirs. It fails when a job named
// is not in the manifest.
func soakSchedules(manifest string, every map[string]string) (string, error) {
	docs := strings.Split(manifest, "\n---\n")
	found := map[string]bool{}
	for i, d := range docs {
		for name, sched := range every {
			if regexp.MustCompile(`(?m)^\s*name:\s*` + regexp.QuoteMeta(name) + `\s*$`).MatchString(d) {
				docs[i] = scheduleLine.ReplaceAllString(d, `${1}"`+sched+`"`)
				found[name] = true
			}
		}
	}
	for name := range every {
		if !found[name] {
			return "", fmt.Errorf("no PingSource %s in the cron schedules", name)
		}
	}
	return strings.Join(docs, "\n---\n"), nil
}

// windowLatency is the latency over the samples whose interval ends within (from, to]
// seconds of the soak.
func windowLatency(samples []SoakSample, from, to float64) stats.Latency {
	var ds []time.Duration
	for _, s := range samples {
		if s.At > from && s.At <= to {
			for _, ms := range s.latencies {
				ds = append(ds, time.Duration(ms*float64(time.Millisecond)))
			}
		}
	}
	return stats.Latencies(ds)
}

// defaultSoakRetention is the soak's PULSE_RETENTION unless -soak-retention says otherwise:
// four minutes, or a sixth of a shorter soak. Purge starts deleting once the oldest rows are
// that old, and the tables stop growing a purge period later; with four minutes, most of the
// first window the verdicts compare is already that steady state (at the soak's rate, half a
// million live notifications), as all of the last is.
func defaultSoakRetention(soak time.Duration) time.Duration {
	return min(4*time.Minute, soak/6)
}

// soakWindow is the length of the first and last windows the verdicts compare: ten minutes,
// or a sixth of a shorter soak, and at least one sample.
func soakWindow(soak, sample time.Duration) float64 {
	return max(min(10*time.Minute, soak/6), sample).Seconds()
}

// soakVerdicts judges the soak's drift from its samples: rate is the offered rate,
// housekeeping purge and trim's period, retention purge's, history the finished rows in the
// table before it started.
func soakVerdicts(samples []SoakSample, soak, sample, housekeeping, retention time.Duration, rate float64, history int) []SoakVerdict {
	if len(samples) < 2 {
		return []SoakVerdict{{What: "drift", Figure: fmt.Sprintf("%d samples: too few to compare a first and a last window", len(samples))}}
	}
	win := soakWindow(soak, sample)
	end := samples[len(samples)-1].At
	inFirst := func(s SoakSample) bool { return s.At <= win }
	inMiddle := func(s SoakSample) bool { return s.At > end/2-win && s.At <= end/2 }
	inLast := func(s SoakSample) bool { return s.At > end-win }
	var out []SoakVerdict

	first, last := windowLatency(samples, 0, win), windowLatency(samples, end-win, end)
	out = append(out, SoakVerdict{
		What:   fmt.Sprintf("p99 of the last %s within %.0f%% of the first %s's", secs(win), 100*soakP99Drift, secs(win)),
		Figure: fmt.Sprintf("%.1f ms vs %.1f ms (%s)", last.P99, first.P99, change(last.P99, first.P99)),
		OK:     first.Count > 0 && last.Count > 0 && last.P99 <= (1+soakP99Drift)*first.P99,
	})

	// Table size against live rows: each table's total size over the most live rows it has
	// held so far, largest in the last window against largest in the window ending half-way.
	tables := map[string]bool{}
	for _, s := range samples {
		for _, r := range s.Relations {
			if !r.Index {
				tables[r.Name] = true
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(tables)) {
		var peakLive int64
		var midD, lastD float64
		for _, s := range samples {
			for _, r := range s.Relations {
				if r.Index || r.Name != t {
					continue
				}
				peakLive = max(peakLive, r.LiveTuples)
				if peakLive == 0 {
					continue
				}
				d := float64(r.TotalBytes) / float64(peakLive)
				if inMiddle(s) {
					midD = max(midD, d)
				}
				if inLast(s) {
					lastD = max(lastD, d)
				}
			}
		}
		if midD == 0 {
			continue // a table that held no row by half-way
		}
		out = append(out, SoakVerdict{
			What: fmt.Sprintf("%s: total size per live row (at the most live rows so far) in the last window within %.0f%% of the window ending half-way", t, 100*soakDensityDrift),
			Figure: fmt.Sprintf("%.0f B vs %.0f B per row (%s); %d live rows at most",
				lastD, midD, change(lastD, midD), peakLive),
			OK: lastD <= (1+soakDensityDrift)*midD,
		})
	}

	// Purge keeps up: with a purge every period keeping the retention's finished rows, the
	// table holds at most about a retention, a period and a sample of rows; the history is
	// older than the retention and goes with the first purges.
	period := housekeeping.Seconds()
	liveBound := rate * (retention.Seconds() + period + sample.Seconds()) * (1 + soakKeepUpSlack)
	var lastLive int64
	for _, s := range samples {
		for _, r := range s.Relations {
			if !r.Index && r.Name == "notifications" && inLast(s) {
				lastLive = max(lastLive, r.LiveTuples)
			}
		}
	}
	out = append(out, SoakVerdict{
		What: fmt.Sprintf("purge keeps up: notifications' live rows in the last window ≤ rate × (%s + %s + %s) + %.0f%%",
			retention, housekeeping, sample, 100*soakKeepUpSlack),
		Figure: fmt.Sprintf("%d rows at most; bound %.0f (history of %d finished rows before the soak)", lastLive, liveBound, history),
		OK:     float64(lastLive) <= liveBound,
	})
	// Trim keeps up: a stream holds at most the entries of one period between trims.
	streamBound := rate * (period + sample.Seconds()) * (1 + soakKeepUpSlack)
	var lastLen int64
	var longest string
	for _, s := range samples {
		if !inLast(s) {
			continue
		}
		for k, n := range s.Streams {
			if n > lastLen {
				lastLen, longest = n, k
			}
		}
	}
	out = append(out, SoakVerdict{
		What:   fmt.Sprintf("trim keeps up: every stream's length in the last window ≤ rate × (%s + %s) + %.0f%%", housekeeping, sample, 100*soakKeepUpSlack),
		Figure: fmt.Sprintf("%d entries at most (%s); bound %.0f", lastLen, orDash(longest), streamBound),
		OK:     float64(lastLen) <= streamBound,
	})

	procs := map[string]bool{}
	for _, s := range samples {
		for k := range s.RSS {
			procs[k] = true
		}
	}
	for _, p := range slices.Sorted(maps.Keys(procs)) {
		var firstMax, lastMax int64
		for _, s := range samples {
			if inFirst(s) {
				firstMax = max(firstMax, s.RSS[p])
			}
			if inLast(s) {
				lastMax = max(lastMax, s.RSS[p])
			}
		}
		out = append(out, SoakVerdict{
			What:   fmt.Sprintf("%s RSS flat: the last window's largest within %.0f%% of the first's", p, 100*soakRSSDrift),
			Figure: fmt.Sprintf("%.1f MB vs %.1f MB (%s)", mb(lastMax), mb(firstMax), change(float64(lastMax), float64(firstMax))),
			OK:     firstMax > 0 && float64(lastMax) <= (1+soakRSSDrift)*float64(firstMax),
		})
	}
	return out
}

func change(now, was float64) string {
	if was == 0 {
		return "no first figure"
	}
	return fmt.Sprintf("%+.0f%%", 100*(now/was-1))
}

func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }

// runSoak sends at half the flood rate for Options.Soak with the cron function playing its
// schedules (purge and trim every housekeeping period), and samples latency, tables, Redis and
// the processes' memory every Options.SoakSample.
func (h *Harness) runSoak(ctx context.Context) *SoakResult {
	o := h.opts
	res := &SoakResult{Seconds: o.Soak.Seconds(), SampleSeconds: o.SoakSample.Seconds()}
	base, from, err := loadBase(h.floodRates(), o.LoadBase)
	if err != nil {
		res.Skipped = err.Error()
		return res
	}
	if !h.built["cron"] {
		res.Skipped = "the cron function does not build: purge and trim could not run"
		return res
	}
	res.Base, res.BaseFrom = base, from
	res.Rate, _ = offered(base, soakPercent, 1)
	retention := o.SoakRetention
	if retention == 0 {
		retention = defaultSoakRetention(o.Soak)
	}
	res.RetentionSeconds = retention.Seconds()
	var period time.Duration // 0: the manifest's schedules
	if o.SoakHousekeeping > 0 {
		period = housekeepingPeriod(o.SoakHousekeeping)
	}
	if err := h.soak(ctx, res, period, retention); err != nil {
		res.Error = err.Error()
	}
	return res
}

// soakScrapeEvery is how often the soak scrapes the metrics function, as a Prometheus would.
// A scrape also rolls the status count changes up (pkg/metrics), which is what keeps
// notification_count_changes short in a cluster.
const soakScrapeEvery = 15 * time.Second

// pingPeriod is the time between two runs of the PingSource named name.
func pingPeriod(pings []devping.Ping, name string) (time.Duration, error) {
	for _, p := range pings {
		if p.Name == name {
			first := p.Next(time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC))
			return p.Next(first).Sub(first), nil
		}
	}
	return 0, fmt.Errorf("no PingSource %s in the cron schedules", name)
}

// scrapeLoop GETs url every soakScrapeEvery until ctx is done, counting into res.
func scrapeLoop(ctx context.Context, url string, res *SoakResult) {
	client := &http.Client{Timeout: 10 * time.Second}
	var took []time.Duration
	defer func() { res.ScrapeLatency = stats.Latencies(took) }()
	tick := time.NewTicker(soakScrapeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		resp, err := client.Get(url)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil && ctx.Err() != nil {
			return // the soak ended during the scrape: not a failure, not a scrape
		}
		res.Scrapes++
		if err != nil {
			res.ScrapeErrors++
			continue
		}
		took = append(took, time.Since(start))
	}
}

func (h *Harness) soak(ctx context.Context, res *SoakResult, period, retention time.Duration) error {
	o := h.opts
	e, s, err := h.newSinkEnv(ctx, func() (*sink, error) { return startSink(0) })
	if err != nil {
		return err
	}
	defer e.close()
	defer s.Close()
	ingest, err := e.start(ctx, "ingest", "ingest", nil, false)
	if err != nil {
		return err
	}
	deliver, source, err := e.startDeliverPath(ctx, nil, o.E2EStreamConcurrency, false)
	if err != nil {
		return err
	}
	cron, err := e.start(ctx, "cron", "cron", map[string]string{"PULSE_RETENTION": retention.String()}, false)
	if err != nil {
		return err
	}
	metrics, err := e.start(ctx, "metrics", "metrics", nil, false)
	if err != nil {
		return err
	}
	procs := []*proc.Process{ingest, deliver, source, cron, metrics}

	// The cron jobs on config/'s schedules, as `pulse dev` plays them; with -soak-housekeeping,
	// purge and trim every period instead.
	manifest, err := os.ReadFile(filepath.Join(h.root, "config", "40-cron-schedules.yaml"))
	if err != nil {
		return err
	}
	schedules := string(manifest)
	if period > 0 {
		every := cronEvery(period)
		schedules, err = soakSchedules(schedules, map[string]string{"cron-purge": every, "cron-trim": every})
		if err != nil {
			return err
		}
		res.Rewritten = true
	}
	dir := filepath.Join(h.work, "soak-schedules")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "40-cron-schedules.yaml"), []byte(schedules), 0o644); err != nil {
		return err
	}
	pings, err := devping.LoadPingSources(dir)
	if err != nil {
		return err
	}
	for _, p := range pings {
		res.Schedules = append(res.Schedules, p.Name+": "+p.Schedule)
	}
	var housekeeping time.Duration // the longer of purge's and trim's periods
	for _, name := range []string{"cron-purge", "cron-trim"} {
		every, err := pingPeriod(pings, name)
		if err != nil {
			return err
		}
		housekeeping = max(housekeeping, every)
	}
	res.HousekeepingSeconds = housekeeping.Seconds()
	pingCtx, stopPings := context.WithCancel(ctx)
	defer stopPings()
	logger := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var pinging sync.WaitGroup
	pinging.Go(func() {
		_ = devping.RunPings(pingCtx, pings, fmt.Sprintf("http://127.0.0.1:%d/", cron.Port), &http.Client{Timeout: time.Minute}, logger)
	})

	var scraping sync.WaitGroup
	scraping.Go(func() { scrapeLoop(pingCtx, fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics.Port), res) })

	w, err := h.begin(ctx, procs, false)
	if err != nil {
		return err
	}
	t := loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", ingest.Port), Source: benchSource, IDPrefix: "soak-",
		Channel: s.Channel, Sink: s.To, Priority: "high"}
	client := loadgen.NewClient(t.Addr, pacedInFlight)
	defer client.Close()
	start := time.Now()
	deadline := start.Add(o.Soak)
	loadCtx, stopLoad := context.WithDeadline(ctx, deadline)
	defer stopLoad()
	var sending sync.WaitGroup
	sending.Go(func() {
		// One paced run per sampling interval, so the load generator holds one interval's
		// requests at a time.
		_, chunk := offered(res.Rate, 100, o.SoakSample.Seconds())
		for first := 0; loadCtx.Err() == nil; first += chunk {
			k := min(chunk, int(res.Rate*time.Until(deadline).Seconds()))
			if k < 1 {
				return
			}
			r := loadgen.Paced(loadCtx, t, client, first, k, res.Rate, pacedInFlight)
			res.Sent += r.Requests
			res.Accepted += r.Accepted
			res.Errors += r.Errors
			if res.FirstError == "" {
				res.FirstError = r.FirstError
			}
		}
	})

	prev := start
	prevCPU := benchCPU()
	tick := time.NewTicker(o.SoakSample)
	defer tick.Stop()
	var sampleErr error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			stopLoad()
			sending.Wait()
			return ctx.Err()
		case now := <-tick.C:
			done = !now.Before(deadline)
			sm, err := h.soakSample(ctx, e, procs, prev, now)
			if err != nil && sampleErr == nil {
				sampleErr = err
				h.logf("soak sample: %v", err)
			}
			sm.At = now.Sub(start).Seconds()
			cpu := benchCPU()
			sm.BenchCPU = (cpu - prevCPU).Seconds() / now.Sub(prev).Seconds()
			prevCPU = cpu
			res.Samples = append(res.Samples, sm)
			h.logf("soak %s: %d delivered, p99 %.1f ms", time.Duration(sm.At*float64(time.Second)).Round(time.Second), sm.Delivered, sm.Latency.P99)
			prev = now
		}
	}
	stopLoad()
	sending.Wait()
	// What was accepted in the last moments is delivered a little later.
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	waitErr := s.waitReceived(waitCtx, res.Accepted)
	cancel()
	m := w.end(context.WithoutCancel(ctx), res.Accepted)
	stopPings()
	pinging.Wait()
	scraping.Wait()
	res.Postgres, res.Processes = m.Postgres, m.Processes
	total, distinct, _ := s.Stats()
	res.Duplicates = total - distinct
	if distinct < res.Accepted {
		res.Missing = res.Accepted - distinct
		res.Errors += res.Missing
	}
	var all []time.Duration
	for _, sm := range res.Samples {
		for _, ms := range sm.latencies {
			all = append(all, time.Duration(ms*float64(time.Millisecond)))
		}
	}
	res.Latency = stats.Latencies(all)
	res.Verdicts = soakVerdicts(res.Samples, o.Soak, o.SoakSample, housekeeping, retention, res.Rate, o.History)
	if waitErr != nil {
		return waitErr
	}
	return sampleErr
}

// soakSample reads one interval's deliveries, the run's tables and indexes, Redis and the
// processes' RSS.
func (h *Harness) soakSample(ctx context.Context, e *runEnv, procs []*proc.Process, from, to time.Time) (SoakSample, error) {
	sm := SoakSample{Streams: map[string]int64{}, RSS: map[string]int64{}}
	for _, p := range procs {
		if rss, err := proc.RSS(p.PID()); err == nil {
			sm.RSS[p.Name] = rss
		}
	}
	sm.BenchRSS, _ = proc.RSS(os.Getpid())
	rows, err := e.pool.Query(ctx, `select extract(epoch from delivered_at - created_at)::float8 * 1000 from notifications
		where finished_at >= $1 and finished_at < $2 and status = 'delivered' and source <> '`+fillSource+`'`, from, to)
	if err != nil {
		return sm, fmt.Errorf("read the interval's latencies: %w", err)
	}
	var ds []time.Duration
	for rows.Next() {
		var ms float64
		if err := rows.Scan(&ms); err != nil {
			rows.Close()
			return sm, err
		}
		sm.latencies = append(sm.latencies, ms)
		ds = append(ds, time.Duration(ms*float64(time.Millisecond)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sm, err
	}
	sm.Delivered, sm.Latency = len(ds), stats.Latencies(ds)

	rows, err = e.pool.Query(ctx, `select relname, relname, false, n_live_tup, n_dead_tup, pg_relation_size(relid), pg_total_relation_size(relid)
		from pg_stat_user_tables where schemaname = $1
		union all
		select indexrelname, relname, true, 0, 0, pg_relation_size(indexrelid), pg_relation_size(indexrelid)
		from pg_stat_user_indexes where schemaname = $1
		order by 2, 3, 1`, e.schema)
	if err != nil {
		return sm, fmt.Errorf("read table sizes: %w", err)
	}
	for rows.Next() {
		var r SoakRelation
		if err := rows.Scan(&r.Name, &r.Table, &r.Index, &r.LiveTuples, &r.DeadTuples, &r.Bytes, &r.TotalBytes); err != nil {
			rows.Close()
			return sm, err
		}
		sm.Relations = append(sm.Relations, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sm, err
	}

	info, err := h.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return sm, fmt.Errorf("redis INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			sm.RedisUsedMemory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	iter := h.rdb.ScanType(ctx, 0, "*"+e.prefix+"*", 100, "stream").Iterator()
	for iter.Next(ctx) {
		n, err := h.rdb.XLen(ctx, iter.Val()).Result()
		if err != nil {
			return sm, fmt.Errorf("XLEN %s: %w", iter.Val(), err)
		}
		name := iter.Val()
		for _, p := range []string{"{" + e.prefix + "}:", e.prefix + ":"} {
			name = strings.TrimPrefix(name, p)
		}
		sm.Streams[name] = n
	}
	return sm, iter.Err()
}

// benchCPU is the bench process's own CPU time so far.
func benchCPU() time.Duration {
	st, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return 0
	}
	return st.CPU
}
