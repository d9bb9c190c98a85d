package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pulse-knative/pulse/bench/profile"
	"github.com/pulse-knative/pulse/bench/stats"
)

// Report is everything a bench run writes to results.json.
type Report struct {
	Generated time.Time `json:"generated"`
	Command   string    `json:"command"`
	Quick     bool      `json:"quick"`
	Options   Options   `json:"options"`
	// DatabaseURL and RedisURL are the datastores, passwords redacted.
	DatabaseURL string `json:"database_url"`
	RedisURL    string `json:"redis_url"`
	// PrivatePostgres and PrivateRedis are set when the bench started the server itself
	// rather than being given one with -database-url or -redis-url.
	PrivatePostgres bool `json:"private_postgres"`
	PrivateRedis    bool `json:"private_redis"`
	// ProfileDir is where the profiles went, relative to the module when inside it.
	ProfileDir string     `json:"profile_dir"`
	Machine    Machine    `json:"machine"`
	Summaries  []*Summary `json:"summaries"`
	Runs       []Run      `json:"runs"`
	// Soak is the soak, nil when none ran.
	Soak     *SoakResult `json:"soak,omitempty"`
	Duration float64     `json:"duration_seconds"`
}

// writeMarkdown writes REPORT.md.
func writeMarkdown(w io.Writer, rep *Report) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Pulse benchmark report\n\n")
	if rep.Quick {
		p("> **QUICK MODE — not the figures of record.** N=%d per ingest and end-to-end run, %d per drain run, %d repetitions, on a machine that may have been busy with other work (load average %s at the start). Run `make bench` (or `go run ./bench`) on a quiet machine for the full report.\n\n",
			rep.Options.N, rep.Options.DrainN, rep.Options.Reps, rep.Machine.LoadAverage)
	}
	p("Generated %s by `%s` in %s; commit %s. Each scenario ran %d times, interleaved (every scenario once, then again); figures are medians with min–max. The functions were profiled during repetition %d (CPU profile at 100 Hz, block profile at one sample per 10 µs blocked).\n\n",
		rep.Generated.UTC().Format(time.RFC3339), rep.Command, time.Duration(rep.Duration*float64(time.Second)).Round(time.Second),
		rep.Machine.Commit, rep.Options.Reps, rep.Options.ProfileRep)

	sharedMachine(w, rep)
	if len(rep.Options.Settings) > 0 {
		keys := slices.Sorted(maps.Keys(rep.Options.Settings))
		for i, k := range keys {
			keys[i] = "`" + k + "=" + rep.Options.Settings[k] + "`"
		}
		p("Every Pulse process ran with %s over the defaults.\n\n", strings.Join(keys, ", "))
	}
	m := rep.Machine
	p("## Machine and versions\n\n| | |\n|---|---|\n")
	p("| cores, memory | %d, %.1f GB |\n| CPU | %s |\n| kernel | %s |\n| load average at start | %s |\n", m.Cores, m.MemoryGB, m.CPU, m.Kernel, m.LoadAverage)
	p("| Go | %s |\n| PostgreSQL | %s |\n", m.Go, m.Postgres)
	var settings []string
	for _, k := range pgSettings {
		if v, ok := m.PGSettings[k]; ok {
			settings = append(settings, fmt.Sprintf("%s=%s", k, v))
		}
	}
	p("| PostgreSQL settings | %s |\n| Redis | %s |\n| Python, Celery | %s, %s |\n", strings.Join(settings, ", "), m.Redis, orDash(m.Python), orDash(m.Celery))
	var sizes []string
	for _, c := range commands {
		if v, ok := m.BinaryMB[c.name]; ok {
			sizes = append(sizes, fmt.Sprintf("%s %.1f", c.name, v))
		}
	}
	p("| binary sizes, MB (`-trimpath -ldflags=-s -w`, as ko.yaml) | %s |\n\n", strings.Join(sizes, ", "))
	datastores(w, rep)

	p("## Headline\n\n")
	p("Throughput is notifications per second (accepted by ingest, or delivered), median of the repetitions (min–max). The ratio divides by the baseline's median from the same run. CPU-s/1000 is CPU-seconds per 1000 notifications of everything the system under test used: its processes, PostgreSQL (backends and background) and Redis, not the bench's load generator or sink. RSS is the largest peak (VmHWM) of one process.\n\n")
	p("| scenario | N | throughput | baseline | ratio | p50 / p90 / p99 ms | CPU-s/1000 | peak RSS MB | errors / dups | target |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range rep.Summaries {
		if s.Scenario == "startup" || strings.HasPrefix(s.Scenario, "scrape-") {
			continue
		}
		if s.Runs == 0 {
			p("| %s | | not run: %s | | | | | | | %s |\n", s.Scenario, oneLine(firstOf(s.Skipped, strings.Join(s.Failures, "; "))), s.Target)
			continue
		}
		base, ratio := "", ""
		if s.Ratio > 0 {
			base, ratio = fmt.Sprintf("%.0f", s.BaselineThroughput), fmt.Sprintf("%.2f×", s.Ratio)
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %d / %d | %s |\n", s.Scenario, s.N, spread0(s.Throughput), base, ratio,
			latencyCell(s), spread2(s.CPUPer1000), rssCell(s), s.Errors, s.Duplicates, targetCell(s))
	}
	p("\n")
	targets(w, rep.Summaries, rep.Soak, rep.Machine.Cores)
	riverComparison(w, rep.Summaries)
	loadCurve(w, rep.Summaries)
	soakSection(w, rep.Soak)
	for _, s := range rep.Summaries {
		if s.Scenario == "startup" {
			startupTable(w, s)
		}
	}
	for _, s := range rep.Summaries {
		if strings.HasPrefix(s.Scenario, "scrape-") {
			scrapeRow(w, s)
		}
	}

	p("## What bounds each figure\n\n")
	p("For each scenario: how busy the machine's cores were and who used them (the process's CPU time over the window's wall time times the cores), what the bench database's PostgreSQL backends were doing when sampled every 25 ms (`pg_stat_activity`: running on CPU, waiting on a named wait event, or idle waiting for their client), and, from the profiled repetition, where each function's CPU time went. `idle` backends wait for the application; `IO:WALSync` / `LWLock:WALWrite` are commits waiting for the WAL flush (`synchronous_commit=%s`).\n\n",
		m.PGSettings["synchronous_commit"])
	for _, s := range rep.Summaries {
		if s.Runs == 0 || s.Scenario == "startup" {
			continue
		}
		bounds(w, s, m.Cores)
	}
	p("## Notes\n\n")
	p("- Every run gets a fresh schema (migrated before the processes start) and Redis key prefix, dropped afterwards; processes are started fresh for every run, so peak RSS is per run.\n")
	if rep.Options.History > 0 {
		p("- Before each ingest, end-to-end and drain run the table already holds %d finished notifications (the scrape runs' mix) with statistics taken and a checkpoint after the fill, as in an installation that has been running; the figures leave them out.\n", rep.Options.History)
	}
	p("- Ingest runs send %d warm-up requests (not measured) before the window opens. The naive baselines run inside the bench process (pgx and go-redis, no HTTP); their CPU is the bench process's.\n", warmup(rep.Options.N))
	p("- End to end: the window opens before the first POST and closes when every notification is `delivered` in PostgreSQL; throughput is N over (last `delivered_at` − first POST); latency is `delivered_at − created_at` per notification.\n")
	p("- Drain runs: the queue (Redis list for Celery, River's job table in the run's schema for River, stream for Pulse) holds all N before the consumer starts; the window opens at the first delivery, so start-up (seconds for Python) is not counted; throughput is (N−1) over (last − first `delivered_at`). The Celery task uses raw psycopg2 and one keep-alive `requests.Session` per process (the old system used the Django ORM: slower), and signs each webhook as Pulse does, since the sink verifies signatures. The River worker (bench/riverpeer) does the same work with pgx and net/http, its job arguments carrying only the notification id; it records a refused webhook as failed rather than have River retry it, as the Celery task does.\n")
	if !rep.PrivatePostgres || !rep.PrivateRedis {
		p("- PostgreSQL's background processes (WAL writer, checkpointer) and Redis serve every user of a shared server: other work on it during a run is counted in them.\n")
	}
	p("- Profiles: `%s/<scenario>/<process>.{cpu,block}.pprof` (not committed); open with `go tool pprof -http=: <file>`. Block profiles leave out the goroutines of idle keep-alive connections (`net/http.(*persistConn).writeLoop`).\n", rep.ProfileDir)
	for _, s := range rep.Summaries {
		for _, f := range s.Failures {
			p("- `%s` failed: %s\n", s.Scenario, oneLine(f))
		}
		if s.Skipped != "" {
			p("- `%s` skipped: %s\n", s.Scenario, oneLine(s.Skipped))
		}
	}
}

// datastores says which PostgreSQL and Redis servers the run measured on, and lists every
// PostgreSQL setting that is not the built-in default.
func datastores(w io.Writer, rep *Report) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if rep.PrivatePostgres {
		p("PostgreSQL: a cluster of the bench's own (initdb into a temporary directory, a free port), with initdb's stock configuration: autovacuum on, `synchronous_commit=on`, `fsync=on`, nothing tuned. ")
	} else {
		p("PostgreSQL: **the server given with `-database-url` (%s), not a private cluster: its settings and other users' load are not production's**. ", rep.DatabaseURL)
	}
	if rep.PrivateRedis {
		p("Redis: a redis-server of the bench's own, no persistence.\n\n")
	} else {
		p("Redis: the server given with `-redis-url` (%s), shared with whatever else uses it.\n\n", rep.RedisURL)
	}
	if len(rep.Machine.PGNonDefault) == 0 {
		return
	}
	p("Every PostgreSQL setting that is not the built-in default (`pg_settings` where `source` is not `default` or `override`; `client` rows are the bench connection's own):\n\n| setting | value | source |\n|---|---|---|\n")
	for _, st := range rep.Machine.PGNonDefault {
		p("| %s | %s | %s |\n", st.Name, strings.ReplaceAll(st.Value, "|", "\\|"), st.Source)
	}
	p("\n")
}

// baselineProcesses are the processes of the baselines, which the targets on Pulse's functions
// leave out.
var baselineProcesses = map[string]bool{"celery-worker": true, "river-worker": true}

// riverComparison sets Pulse's deliver path beside the River worker at each sink delay: the
// same work per notification, at the same concurrency, from a pre-filled queue, in the same
// run.
func riverComparison(w io.Writer, sums []*Summary) {
	by := map[string]*Summary{}
	for _, s := range sums {
		if s.Runs > 0 {
			by[s.Scenario] = s
		}
	}
	var rows []string
	for _, s := range sums {
		delay, ok := strings.CutPrefix(s.Scenario, "drain-pulse-")
		if !ok {
			continue
		}
		pulse, river := by[s.Scenario], by["drain-river-"+delay]
		if pulse == nil || river == nil || river.Throughput.Median <= 0 {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | %.0f | %.0f | %.2f× | %.2f / %.2f | %s / %s |",
			strings.TrimPrefix(delay, "sink-"), pulse.Throughput.Median, river.Throughput.Median,
			pulse.Throughput.Median/river.Throughput.Median, pulse.CPUPer1000.Median, river.CPUPer1000.Median,
			peakRSS(pulse), peakRSS(river)))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### Pulse's deliver path against River, same concurrency, pre-filled queue\n\n")
	fmt.Fprintf(w, "`drain-pulse-*` over `drain-river-*` from this run (medians): both load the row, POST the signed webhook to the same sink and record the outcome, at the same concurrency, on the same PostgreSQL cluster. CPU-s/1000 counts each system's processes, PostgreSQL and Redis.\n\n")
	fmt.Fprintf(w, "| sink delay | Pulse delivered/s | River delivered/s | Pulse ÷ River | CPU-s/1000 Pulse / River | largest peak RSS MB Pulse / River |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintln(w)
}

// peakRSS is the largest peak RSS of one process of a scenario, in MB.
func peakRSS(s *Summary) string {
	var v float64
	for _, p := range s.Processes {
		v = max(v, p.PeakRSSMB.Max)
	}
	return fmt.Sprintf("%.0f", v)
}

func startupTable(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "### Start-up\n\n%s; %d repetitions. Target: ready within %d ms.\n\n| process | ready ms, median (min–max) | RSS at ready MB |\n|---|---:|---:|\n", s.Title, s.Runs, targetReadyMS)
	for _, p := range s.Processes {
		fmt.Fprintf(w, "| %s | %s | %.1f |\n", p.Name, spread1(p.ReadyMS), p.PeakRSSMB.Median)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "\nfailed: %s\n", oneLine(f))
	}
	fmt.Fprintln(w)
}

func scrapeRow(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "### Metrics scrape, %s\n\n", strings.TrimPrefix(s.Scenario, "scrape-"))
	if s.Runs == 0 {
		fmt.Fprintf(w, "Not run: %s\n\n", oneLine(firstOf(s.Skipped, strings.Join(s.Failures, "; "))))
		return
	}
	fmt.Fprintf(w, "%s. Scrape latency p50 / p90 / p99: %s ms; CPU per scrape: %s ms (metrics function %s, PostgreSQL backends %s); errors %d.",
		s.Title, latencyCell(s), spread1(s.CPUPer1000), cpuOf(s, "metrics"), spread1(s.PGBackendPer1000), s.Errors)
	if e, ok := s.Extra["first_scrape_ms"]; ok {
		fmt.Fprintf(w, " First scrape after the fill (rolling up the fill's count changes): %s ms.", spread0(e))
	}
	if e, ok := s.Extra["fill_seconds"]; ok {
		fmt.Fprintf(w, " Filling the table took %.0f s.", e.Median)
	}
	fmt.Fprint(w, "\n\n")
}

func cpuOf(s *Summary, name string) string {
	for _, p := range s.Processes {
		if p.Name == name {
			return spread1(p.CPUPer1000)
		}
	}
	return "–"
}

// bounds writes what the measurements say bounds a scenario's figure.
func bounds(w io.Writer, s *Summary, cores int) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### %s\n\n%s.\n\n", s.Scenario, s.Title)
	busy := s.MachineBusy.Median
	var users []string
	for _, ps := range s.Processes {
		users = append(users, fmt.Sprintf("%s %.0f%%", ps.Name, 100*ps.CPUShare))
	}
	if s.Throughput.Median > 0 && s.N > 0 {
		wallPer1000 := 1000 / s.Throughput.Median
		share := func(sp stats.Spread) float64 { return 100 * sp.Median / (wallPer1000 * float64(cores)) }
		users = append(users, fmt.Sprintf("PostgreSQL backends %.0f%%", share(s.PGBackendPer1000)),
			fmt.Sprintf("PostgreSQL background %.0f%%", share(s.PGBackgroundPer1000)),
			fmt.Sprintf("Redis %.0f%%", share(s.RedisPer1000)),
			fmt.Sprintf("bench process (load generator, sink%s) %.0f%%", map[bool]string{true: ", naive loop", false: ""}[strings.HasPrefix(s.Scenario, "naive")], share(s.HarnessPer1000)))
	}
	if other := otherWork(s, cores); other > 0.05 {
		users = append(users, fmt.Sprintf("**other work on the machine %.0f%%**", 100*other))
	}
	verdict := "the cores were not saturated: time went to waiting (see PostgreSQL's states below)"
	if busy >= 0.9 {
		verdict = "**CPU-bound**: the machine's cores were saturated"
	} else if busy >= 0.75 {
		verdict = "close to CPU-bound"
	}
	p("- Machine %.0f%% busy (median; %s). Of all cores: %s.\n", 100*busy, verdict, strings.Join(users, ", "))
	if len(s.PGStates) > 0 {
		var st []string
		for _, sh := range s.PGStates[:min(6, len(s.PGStates))] {
			st = append(st, fmt.Sprintf("%s %.0f%% (%.1f backends)", sh.State, 100*sh.Fraction, sh.Backends))
		}
		p("- PostgreSQL backends of the bench database: %s.\n", strings.Join(st, ", "))
	}
	if len(s.PGBGStates) > 0 {
		var st []string
		for _, sh := range s.PGBGStates {
			// "Activity:...Main" is a background process's idle wait for work.
			if sh.Backends < 0.05 || strings.Contains(sh.State, " Activity:") || strings.HasSuffix(sh.State, "CheckpointWriteDelay") {
				continue
			}
			st = append(st, fmt.Sprintf("%s %.1f", sh.State, sh.Backends))
		}
		if len(st) > 0 {
			p("- PostgreSQL background processes (mean number in each state): %s.\n", strings.Join(st, ", "))
		}
	}
	var stages []string
	for k := range s.Stages {
		stages = append(stages, k)
	}
	sort.Strings(stages)
	for _, k := range stages {
		p("- p99 of stage %s: %s ms.\n", k, spread1(s.Stages[k]))
	}
	var names []string
	for k := range s.Profiles {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		prof := s.Profiles[k]
		if strings.HasSuffix(k, ".cpu") {
			p("- `%s` CPU profile (%s of samples): areas %s; by Pulse frame %s; hottest functions %s.\n", k,
				prof.Total.Round(10*time.Millisecond), entryList(prof.Areas, 7, 1), entryList(prof.Pulse, 6, 2), entryList(prof.Flat, 5, 2))
		} else {
			p("- `%s` block profile (%s blocked in total, summed over goroutines): waiting at %s.\n", k, prof.Total.Round(time.Millisecond), entryList(busySites(prof.Sites), 5, 2))
		}
	}
	for _, n := range s.Notes {
		p("- note: %s\n", oneLine(n))
	}
	p("\n")
}

// otherWork is the part of the machine's cores busy with work outside the run during a
// scenario's windows (median): other users of a shared machine.
func otherWork(s *Summary, cores int) float64 {
	ours := 0.0
	for _, ps := range s.Processes {
		ours += ps.CPUShare
	}
	if s.Throughput.Median > 0 && s.N > 0 {
		wallPer1000 := 1000 / s.Throughput.Median
		ours += (s.PGBackendPer1000.Median + s.PGBackgroundPer1000.Median + s.RedisPer1000.Median + s.HarnessPer1000.Median) / (wallPer1000 * float64(cores))
	}
	return s.MachineBusy.Median - ours
}

// sharedMachine says, when other work took a noticeable part of the cores during the
// measured windows, that the run shared the machine.
func sharedMachine(w io.Writer, rep *Report) {
	var others []float64
	for _, s := range rep.Summaries {
		if s.Runs > 0 && s.Scenario != "startup" {
			others = append(others, otherWork(s, rep.Machine.Cores))
		}
	}
	if len(others) == 0 {
		return
	}
	slices.Sort(others)
	median := others[len(others)/2]
	if median <= 0.05 {
		return
	}
	fmt.Fprintf(w, "**This run shared the machine with other work**: outside the run, %.0f%% of the cores were busy during the median scenario's window (%.0f%% at most; load average %s at the start). Absolute figures are lower than on a quiet machine; every ratio is against a baseline from the same run, interleaved, so both sides met the same neighbours.\n\n",
		100*median, 100*others[len(others)-1], rep.Machine.LoadAverage)
}

// busySites leaves out the goroutines of idle keep-alive connections, which wait in
// net/http's connection loops the whole run whatever the load.
func busySites(es []profile.Entry) []profile.Entry {
	var out []profile.Entry
	for _, e := range es {
		if e.Name == "net/http.(*persistConn).writeLoop" || e.Name == "net/http.(*persistConn).readLoop" {
			continue
		}
		out = append(out, e)
	}
	return out
}

func entryList(es []profile.Entry, n int, minPercent float64) string {
	var out []string
	for _, e := range es {
		if len(out) == n || e.Percent < minPercent {
			break
		}
		out = append(out, fmt.Sprintf("`%s` %.0f%%", e.Name, e.Percent))
	}
	if len(out) == 0 {
		return "–"
	}
	return strings.Join(out, ", ")
}

func latencyCell(s *Summary) string {
	if s.P50.Median == 0 && s.P99.Median == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s / %s", f1(s.P50.Median), f1(s.P90.Median), f1(s.P99.Median)) + fmt.Sprintf(" (p99 %s–%s)", f1(s.P99.Min), f1(s.P99.Max))
}

func rssCell(s *Summary) string {
	var out []string
	for _, p := range s.Processes {
		v := p.PeakRSSMB.Max
		if p.Processes > 1 {
			out = append(out, fmt.Sprintf("%s %.0f (%d procs, %.0f in all)", p.Name, v, p.Processes, p.SumRSSMB.Max))
			continue
		}
		out = append(out, fmt.Sprintf("%s %.0f", p.Name, v))
	}
	if len(out) == 0 {
		return "–"
	}
	return strings.Join(out, ", ")
}

func targetCell(s *Summary) string {
	if s.Target == "" {
		return ""
	}
	switch {
	case s.Met == nil:
		return s.Target
	case *s.Met:
		return s.Target + ": **met**"
	default:
		return s.Target + ": **missed**"
	}
}

func spread0(s stats.Spread) string {
	return fmt.Sprintf("%.0f (%.0f–%.0f)", s.Median, s.Min, s.Max)
}

func spread1(s stats.Spread) string {
	return fmt.Sprintf("%s (%s–%s)", f1(s.Median), f1(s.Min), f1(s.Max))
}

func spread2(s stats.Spread) string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

func f1(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
