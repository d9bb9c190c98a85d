// Command bench measures Pulse on this machine, side by side with its baselines from the same
// run, and writes bench/REPORT.md and bench/results.json (the raw figures, kept out of git;
// REPORT.md is the record):
//
//   - ingest, one binary-mode CloudEvent per request at several concurrencies and at a fixed
//     rate, and in batches, against a naive loop doing one INSERT and one XADD per item;
//   - end to end, from the first POST to every notification delivered, with ingest, the
//     stream source and deliver-high as separate processes and a webhook sink in the bench;
//   - the old stack: a Celery worker draining a pre-filled Redis queue (load the row, POST,
//     UPDATE) against Pulse's stream source and deliver function draining a pre-filled stream;
//   - each function's start-up time and binary size, and the metrics function's scrape cost
//     on large tables.
//
// Each scenario runs several times, interleaved, against a PostgreSQL cluster and a Redis
// server the bench starts for itself (stock settings, autovacuum on; -database-url and
// -redis-url opt into other servers) with a schema and a key prefix per run, with every
// load on 127.0.0.1 and bounded in count and time. See docs/performance.md (the headline
// figures, reproducing them, sizing a cluster) and `go run ./bench -h`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulse-knative/pulse/bench/profile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if opts.Render != "" {
		if err := render(opts.Render); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, opts, "go run ./bench "+strings.Join(os.Args[1:], " "), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// scenarios lists every scenario in the order one repetition runs them: each baseline right
// before what it is compared with.
func (h *Harness) scenarios() []scenario {
	out := h.ingestScenarios()
	out = append(out, h.e2eScenarios()...)
	// After the flood run, whose throughput it takes its rates from.
	out = append(out, h.loadScenarios()...)
	celerySkip := ""
	for _, d := range h.opts.SinkDelays {
		if h.opts.selected("drain-celery-sink-" + durationName(d)) {
			celerySkip = h.celeryMissing()
			break
		}
	}
	out = append(out, h.drainScenarios(celerySkip)...)
	out = append(out, h.startupScenario())
	out = append(out, h.scrapeScenarios()...)
	var selected []scenario
	for _, s := range out {
		if h.opts.selected(s.Name) {
			selected = append(selected, s)
		}
	}
	return selected
}

// run runs the bench and writes the report.
func run(ctx context.Context, opts Options, command string, log io.Writer) error {
	started := time.Now()
	h, err := newHarness(ctx, opts, log)
	if err != nil {
		return err
	}
	defer h.Close()
	scenarios := h.scenarios()
	machine := h.machine(ctx)
	for name, why := range map[string]string{"synchronous_commit": "commits do not wait for the WAL flush",
		"autovacuum": "dead tuples pile up as production's would not"} {
		if v := machine.PGSettings[name]; v != "on" {
			h.logf("warning: PostgreSQL's %s is %q, not on: %s", name, v, why)
		}
	}
	h.logf("%d scenarios × %d repetitions, N=%d (drain %d); machine: %d cores, load average %s",
		len(scenarios), opts.Reps, opts.N, opts.DrainN, machine.Cores, machine.LoadAverage)

	var runs []Run
	failures := map[string][]string{}
	for rep := 1; rep <= opts.Reps; rep++ {
		for _, sc := range scenarios {
			if sc.skip != "" || sc.run == nil {
				if rep == 1 {
					h.logf("skip %s: %s", sc.Name, sc.skip)
				}
				continue
			}
			profiled := rep == opts.ProfileRep
			h.scenario = sc.Name
			start := time.Now()
			r, err := sc.runOne(ctx, rep, profiled, opts.Timeout)
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			if err != nil {
				failures[sc.Name] = append(failures[sc.Name], fmt.Sprintf("repetition %d: %v", rep, err))
				h.logf("rep %d %-24s FAILED: %v", rep, sc.Name, err)
				continue
			}
			runs = append(runs, r)
			h.done = append(h.done, r)
			h.logf("rep %d %-24s %8.0f %s  p99 %7.1f ms  cpu %.2f s/1000  busy %3.0f%%  errors %d  (%s)",
				rep, sc.Name, r.Throughput, sc.Unit, r.Latency.P99, r.CPUPer1000, 100*r.MachineBusy, r.Errors,
				time.Since(start).Round(100*time.Millisecond))
		}
	}
	var soak *SoakResult
	if opts.Soak > 0 {
		h.scenario = "soak"
		h.logf("soak: %s at %d%% of the flood rate, sampled every %s", opts.Soak, soakPercent, opts.SoakSample)
		soak = h.runSoak(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if soak.Skipped != "" {
			h.logf("skip soak: %s", soak.Skipped)
		}
		if soak.Error != "" {
			failures["soak"] = append(failures["soak"], soak.Error)
			h.logf("soak FAILED: %s", soak.Error)
		}
	}
	for i := range runs {
		for key, file := range runs[i].ProfileFiles {
			s, err := profile.Analyze(ctx, file, 10)
			if err != nil {
				runs[i].Notes = append(runs[i].Notes, err.Error())
				continue
			}
			if runs[i].Profiles == nil {
				runs[i].Profiles = map[string]profile.Summary{}
			}
			runs[i].Profiles[key] = s
		}
	}
	opts = h.opts
	profileDir := opts.Profiles
	if rel, err := filepath.Rel(h.root, profileDir); err == nil && !strings.HasPrefix(rel, "..") {
		profileDir = rel
	}
	rep := &Report{ProfileDir: profileDir, Generated: time.Now(), Command: strings.TrimSpace(command), Quick: opts.Quick, Options: opts,
		DatabaseURL: redact(h.dbURL), RedisURL: redact(h.redisURL), PrivatePostgres: h.pg != nil, PrivateRedis: h.redis != nil, Machine: machine, Runs: runs, Summaries: summarise(scenarios, runs, failures, machine.Cores), Soak: soak,
		Duration: time.Since(started).Seconds()}
	if err := writeReport(opts.Out, rep); err != nil {
		return err
	}
	h.logf("wrote %s and %s in %s", filepath.Join(opts.Out, "REPORT.md"), filepath.Join(opts.Out, "results.json"),
		time.Since(started).Round(time.Second))
	if len(failures) > 0 {
		return fmt.Errorf("%d scenarios failed at least once; see the report", len(failures))
	}
	return nil
}

// render writes REPORT.md again, beside the results.json at path, from what that file holds:
// for a change to the report's layout without a new run.
func render(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	f, err := os.Create(filepath.Join(filepath.Dir(path), "REPORT.md"))
	if err != nil {
		return err
	}
	writeMarkdown(f, &rep)
	return f.Close()
}

func writeReport(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "REPORT.md"))
	if err != nil {
		return err
	}
	writeMarkdown(f, rep)
	return f.Close()
}
