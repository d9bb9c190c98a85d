package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pulse-knative/pulse/bench/pgstat"
)

// The targets, as ratios to baselines from the same run where they can be.
const (
	targetE2EOverCelery   = 8.0
	targetDrainOverCelery = 4.0
	targetIngestOverNaive = 3.5
	targetBatchOverNaive  = 0.8
	targetLoadP99MS       = 100.0
	targetRSSMB           = 35.0
	targetReadyMS         = 50
	// riverScenario is the River worker draining the same pre-filled queue as
	// drain-pulse-sink-0ms, at the same concurrency.
	riverScenario = "drain-river-sink-0ms"
)

// cpuCeiling says what a missed throughput target asks of the CPU: at cpuPer1000 CPU-seconds
// per 1000 notifications (the system under test's: its processes, PostgreSQL and Redis), the
// machine's cores give at most cores × 1000 / cpuPer1000 a second even with nothing else
// running, and reaching want a second needs at most cores × 1000 / want.
func cpuCeiling(cpuPer1000, want float64, cores int) string {
	if cpuPer1000 <= 0 || want <= 0 || cores <= 0 {
		return ""
	}
	ceiling := float64(cores) * 1000 / cpuPer1000
	return fmt.Sprintf("; CPU: %.2f CPU-s/1000 fill %d cores at %.0f/s, the target's %.0f/s needs ≤ %.2f",
		cpuPer1000, cores, ceiling, want, float64(cores)*1000/want)
}

// targetRow is one line of the targets table.
type targetRow struct{ target, figure, verdict string }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// targetRows computes each target from this run's figures; a target whose scenario did not
// run says so.
func targetRows(sums []*Summary, soak *SoakResult, cores int) []targetRow {
	by := map[string]*Summary{}
	for _, s := range sums {
		if s.Runs > 0 {
			by[s.Scenario] = s
		}
	}
	var rows []targetRow
	notRun := func(target, scenario string) {
		rows = append(rows, targetRow{target, "not run (" + scenario + ")", "–"})
	}
	ratio := func(target, scenario string, want float64) {
		s := by[scenario]
		if s == nil || s.Ratio == 0 {
			notRun(target, scenario+" or its baseline "+baselineOf(sums, scenario))
			return
		}
		figure := fmt.Sprintf("%.2f× (%.0f/s vs %s %.0f/s)", s.Ratio, s.Throughput.Median, s.Baseline, s.BaselineThroughput)
		if s.Ratio < want {
			figure += cpuCeiling(s.CPUPer1000.Median, want*s.BaselineThroughput, cores)
		}
		rows = append(rows, targetRow{target, figure, verdict(s.Ratio >= want)})
	}
	ratio(fmt.Sprintf("end to end ≥ %g× the Celery worker", targetE2EOverCelery), floodScenario, targetE2EOverCelery)
	ratio(fmt.Sprintf("deliver path alone at Celery's concurrency ≥ %g× Celery", targetDrainOverCelery), "drain-pulse-sink-0ms", targetDrainOverCelery)
	if p, r := by["drain-pulse-sink-0ms"], by[riverScenario]; p != nil && r != nil && r.Throughput.Median > 0 {
		rows = append(rows, targetRow{"deliver path alone ahead of River at the same concurrency",
			fmt.Sprintf("%.2f× (%.0f/s vs River %.0f/s)", p.Throughput.Median/r.Throughput.Median, p.Throughput.Median, r.Throughput.Median),
			verdict(p.Throughput.Median > r.Throughput.Median)})
	} else {
		notRun("deliver path alone ahead of River at the same concurrency", "drain-pulse-sink-0ms or "+riverScenario)
	}
	half := fmt.Sprintf("e2e-load-%d", soakPercent)
	p99Target := fmt.Sprintf("end-to-end p99 ≤ %.0f ms at %d %% of flood throughput", targetLoadP99MS, soakPercent)
	if s := by[half]; s != nil {
		rows = append(rows, targetRow{p99Target, fmt.Sprintf("p99 %.1f ms at %.0f/s offered (%s)", s.P99.Median, s.Extra["offered_per_s"].Median, half),
			verdict(s.P99.Median <= targetLoadP99MS)})
	} else {
		notRun(p99Target, half)
	}
	stable := "… and stable through the soak (p99 of the last window within 25 % of the first)"
	if v := soakP99Verdict(soak); v != nil {
		rows = append(rows, targetRow{stable, fmt.Sprintf("%s over %s", v.Figure, secs(soak.Seconds)), verdict(v.OK)})
	} else {
		notRun(stable, "soak")
	}
	ratio(fmt.Sprintf("single-event ingest ≥ %g× the naive loop at 64 in flight", targetIngestOverNaive), "ingest-single-c64", targetIngestOverNaive)
	var batches bool
	for _, s := range sums {
		if strings.HasPrefix(s.Scenario, "ingest-batch-") {
			batches = true
			ratio(fmt.Sprintf("batch ingest ≥ %g× the naive batch baseline (%s)", targetBatchOverNaive, strings.TrimPrefix(s.Scenario, "ingest-")), s.Scenario, targetBatchOverNaive)
		}
	}
	if !batches {
		notRun(fmt.Sprintf("batch ingest ≥ %g× the naive batch baseline", targetBatchOverNaive), "ingest-batch-*")
	}
	rssTarget := fmt.Sprintf("each function ≤ %.0f MB peak RSS", targetRSSMB)
	var rss float64
	var where string
	var largest ProcessSummary
	for _, s := range sums {
		if s.Scenario == "startup" || s.Runs == 0 {
			continue
		}
		for _, p := range s.Processes {
			if p.Role == "sut" && !baselineProcesses[p.Name] && p.PeakRSSMB.Max > rss {
				rss, where, largest = p.PeakRSSMB.Max, fmt.Sprintf("%s in %s", p.Name, s.Scenario), p
			}
		}
	}
	if rss > 0 {
		figure := fmt.Sprintf("largest peak %.1f MB (%s)", rss, where)
		if largest.HeapPeakMB.Max > 0 {
			figure += fmt.Sprintf("; its Go heap peaked at %.0f MB with at most %.0f MB live (GODEBUG=gctrace=1)", largest.HeapPeakMB.Max, largest.HeapLiveMB.Max)
		}
		rows = append(rows, targetRow{rssTarget, figure, verdict(rss <= targetRSSMB)})
	} else {
		notRun(rssTarget, "no run of a function")
	}
	readyTarget := fmt.Sprintf("each function ready ≤ %d ms", targetReadyMS)
	if s := by["startup"]; s != nil && len(s.Processes) > 0 {
		var worst ProcessSummary
		for _, p := range s.Processes {
			if p.ReadyMS.Median >= worst.ReadyMS.Median {
				worst = p
			}
		}
		rows = append(rows, targetRow{readyTarget, fmt.Sprintf("slowest median %.0f ms (%s)", worst.ReadyMS.Median, worst.Name), verdict(worst.ReadyMS.Median <= targetReadyMS)})
	} else {
		notRun(readyTarget, "startup")
	}
	return rows
}

func baselineOf(sums []*Summary, scenario string) string {
	for _, s := range sums {
		if s.Scenario == scenario && s.Baseline != "" {
			return s.Baseline
		}
	}
	return "–"
}

// soakP99Verdict is the soak's p99 drift verdict, nil when the soak did not get that far.
func soakP99Verdict(soak *SoakResult) *SoakVerdict {
	if soak == nil {
		return nil
	}
	for i, v := range soak.Verdicts {
		if strings.HasPrefix(v.What, "p99 ") {
			return &soak.Verdicts[i]
		}
	}
	return nil
}

// targets writes the targets beside this run's figures.
func targets(w io.Writer, sums []*Summary, soak *SoakResult, cores int) {
	fmt.Fprintf(w, "### Targets, from this run\n\nRatios divide medians of scenarios from this run, interleaved. The deliver-path rows compare Pulse's stream source and deliver function with the Celery worker and with River, each draining the same pre-filled queue at the same concurrency.\n\n| target | this run (medians) | |\n|---|---|---|\n")
	for _, r := range targetRows(sums, soak, cores) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.target, r.figure, r.verdict)
	}
	fmt.Fprintln(w)
}

// loadCurve writes the end-to-end latency at each offered load.
func loadCurve(w io.Writer, sums []*Summary) {
	var points []*Summary
	for _, s := range sums {
		if strings.HasPrefix(s.Scenario, "e2e-load-") {
			points = append(points, s)
		}
	}
	if len(points) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### End to end: latency against offered load\n\n")
	p("Each point sends at a steady rate, open loop, a fraction of the flood throughput (%s, closed loop) measured earlier in the same run, with ingest, the high stream's source and deliver-high as processes and a webhook sink that answers at once. Latency is request to delivered: `delivered_at − created_at` of each notification, as in the flood run. Offered is the rate sent at; sent what ingest accepted per second; delivered is N over (last `delivered_at` − first POST). Medians of the repetitions (min–max).\n\n", floodScenario)
	p("| point | offered /s | sent /s | delivered /s | p50 / p90 / p99 / max ms | what bounds the tail |\n|---|---:|---:|---:|---:|---|\n")
	for _, s := range points {
		if s.Runs == 0 {
			p("| %s | | | | not run: %s | |\n", s.Scenario, oneLine(firstOf(s.Skipped, strings.Join(s.Failures, "; "))))
			continue
		}
		p("| %s | %.0f | %.0f | %s | %.1f / %.1f / %.1f / %.1f | %s |\n", s.Scenario, s.Extra["offered_per_s"].Median, s.Extra["ingest_accept_per_s"].Median,
			spread0(s.Throughput), s.P50.Median, s.P90.Median, s.P99.Median, s.MaxMS.Median, tailBound(s))
	}
	p("\n")
	for _, s := range points {
		if s.Runs == 0 {
			continue
		}
		base := fmt.Sprintf("the median of the %s runs done before it: %s delivered/s over the repetitions", floodScenario, spread0(s.Extra["base_per_s"]))
		for _, n := range s.Notes {
			if b, ok := strings.CutPrefix(n, "rate base: "); ok {
				base = b
			}
		}
		p("Each point's 100 %% is %s.\n\n", base)
		break
	}
}

// tailBound says in a sentence where the tail of a load point went: the stage whose p99 is
// the larger, how busy the machine was, and what PostgreSQL's backends waited on most apart
// from their clients.
func tailBound(s *Summary) string {
	var parts []string
	var stage string
	var worst float64
	for k, v := range s.Stages {
		if v.Median > worst {
			stage, worst = k, v.Median
		}
	}
	if stage != "" {
		parts = append(parts, fmt.Sprintf("p99 mostly in %s (%.1f ms)", stage, worst))
	}
	parts = append(parts, fmt.Sprintf("machine %.0f%% busy", 100*s.MachineBusy.Median))
	if st := topWait(s.PGStates); st != "" {
		parts = append(parts, "PostgreSQL backends' main wait "+st)
	}
	return strings.Join(parts, "; ")
}

// topWait is the commonest state of the backends other than idle (waiting for their
// client).
func topWait(states []pgstat.Share) string {
	for _, sh := range states {
		if sh.State == "idle" || strings.HasPrefix(sh.State, "idle") || strings.HasPrefix(sh.State, "Client:") {
			continue
		}
		return fmt.Sprintf("%s (%.1f backends)", sh.State, sh.Backends)
	}
	return ""
}

// soakSection writes the soak's settings, per-interval table and verdicts.
func soakSection(w io.Writer, soak *SoakResult) {
	if soak == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### Soak\n\n")
	if soak.Skipped != "" {
		p("Not run: %s.\n\n", soak.Skipped)
		return
	}
	played := "as `pulse dev` plays them"
	if soak.Rewritten {
		played += fmt.Sprintf(", except purge and trim every %s (`-soak-housekeeping`)", secs(soak.HousekeepingSeconds))
	}
	p("%s at %.0f/s offered (%d %% of %s), ingest, the high stream's source, deliver-high, cron and metrics as processes, the webhook sink answering at once. The cron function ran the PingSources of config/40-cron-schedules.yaml %s, with `PULSE_RETENTION=%s` so that purge deletes from the soak's own rows once they are that old: %s. The metrics function was scraped every %s as a Prometheus would (its scrape rolls the status count changes up): %d scrapes, %d failed, p50 / p99 / max %.1f / %.1f / %.1f ms. Sent %d, accepted %d, errors %d (of which %d not delivered at the end), %d delivered twice. Latency over the whole soak (request to delivered): p50 / p90 / p99 / max %.1f / %.1f / %.1f / %.1f ms.\n\n",
		secs(soak.Seconds), soak.Rate, soakPercent, soak.BaseFrom, played, secs(soak.RetentionSeconds),
		strings.Join(soak.Schedules, ", "), soakScrapeEvery, soak.Scrapes, soak.ScrapeErrors,
		soak.ScrapeLatency.P50, soak.ScrapeLatency.P99, soak.ScrapeLatency.Max,
		soak.Sent, soak.Accepted, soak.Errors, soak.Missing, soak.Duplicates,
		soak.Latency.P50, soak.Latency.P90, soak.Latency.P99, soak.Latency.Max)
	if soak.Error != "" {
		p("**The soak stopped early**: %s\n\n", oneLine(soak.Error))
	}
	if soak.FirstError != "" {
		p("First request error: %s\n\n", oneLine(soak.FirstError))
	}
	if len(soak.Verdicts) > 0 {
		p("| verdict | this soak | |\n|---|---|---|\n")
		for _, v := range soak.Verdicts {
			p("| %s | %s | %s |\n", v.What, v.Figure, verdict(v.OK))
		}
		p("\n")
	}
	if len(soak.Samples) == 0 {
		return
	}
	// Columns: the interval's deliveries and p99, each table's live/dead rows and total size,
	// Redis, each stream's length and each process's RSS, named from the first sample.
	var tables, streams, procs []string
	for _, s := range soak.Samples {
		for _, r := range s.Relations {
			if !r.Index && !slices.Contains(tables, r.Name) {
				tables = append(tables, r.Name)
			}
		}
		for k := range s.Streams {
			if !slices.Contains(streams, k) {
				streams = append(streams, k)
			}
		}
		for k := range s.RSS {
			if !slices.Contains(procs, k) {
				procs = append(procs, k)
			}
		}
	}
	slices.Sort(streams)
	slices.Sort(procs)
	p("Every %s: deliveries and their p99 in the interval; per table live / dead rows (`pg_stat_user_tables`, estimates) and total size in MB (`pg_total_relation_size`, indexes and TOAST included); Redis `used_memory` MB; each stream's XLEN; each process's VmRSS MB; the bench process's own VmRSS MB and share of a core (load generator, webhook sink, samplers: it shares the machine's two cores with Pulse). Per-index sizes are in results.json (`soak.samples[].relations`) and, for the last sample, below.\n\n", secs(soak.SampleSeconds))
	head := []string{"t", "delivered", "p99 ms"}
	for _, t := range tables {
		head = append(head, t+" live / dead / MB")
	}
	head = append(head, "Redis MB")
	for _, s := range streams {
		head = append(head, "XLEN "+s)
	}
	for _, pr := range procs {
		head = append(head, pr+" MB")
	}
	head = append(head, "bench MB", "bench CPU %")
	p("| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)))
	for _, s := range soak.Samples {
		row := []string{time.Duration(s.At * float64(time.Second)).Round(time.Second).String(), fmt.Sprint(s.Delivered), fmt.Sprintf("%.1f", s.Latency.P99)}
		for _, t := range tables {
			cell := "–"
			for _, r := range s.Relations {
				if !r.Index && r.Name == t {
					cell = fmt.Sprintf("%d / %d / %.1f", r.LiveTuples, r.DeadTuples, mb(r.TotalBytes))
				}
			}
			row = append(row, cell)
		}
		row = append(row, fmt.Sprintf("%.1f", mb(s.RedisUsedMemory)))
		for _, st := range streams {
			row = append(row, fmt.Sprint(s.Streams[st]))
		}
		for _, pr := range procs {
			row = append(row, fmt.Sprintf("%.1f", mb(s.RSS[pr])))
		}
		row = append(row, fmt.Sprintf("%.1f", mb(s.BenchRSS)), fmt.Sprintf("%.0f", 100*s.BenchCPU))
		p("| %s |\n", strings.Join(row, " | "))
	}
	first, last := soak.Samples[0], soak.Samples[len(soak.Samples)-1]
	p("\nIndexes, MB at the first and the last sample: ")
	var idx []string
	for _, r := range last.Relations {
		if !r.Index {
			continue
		}
		was := 0.0
		for _, f := range first.Relations {
			if f.Index && f.Name == r.Name {
				was = mb(f.Bytes)
			}
		}
		idx = append(idx, fmt.Sprintf("%s %.1f → %.1f", r.Name, was, mb(r.Bytes)))
	}
	p("%s.\n\n", strings.Join(idx, ", "))
	if len(soak.Postgres.States) > 0 {
		var st []string
		for _, sh := range soak.Postgres.States[:min(6, len(soak.Postgres.States))] {
			st = append(st, fmt.Sprintf("%s %.0f%% (%.1f backends)", sh.State, 100*sh.Fraction, sh.Backends))
		}
		p("PostgreSQL backends of the bench database over the soak: %s.\n\n", strings.Join(st, ", "))
	}
}
