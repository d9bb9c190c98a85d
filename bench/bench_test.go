package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/privateserver"
)

// TestSmoke runs every scenario of the harness once with tiny sizes against the private
// PostgreSQL and Redis servers the bench starts, as `make bench` does, and checks that the
// report is written and every run is clean. It measures nothing worth reading; it keeps
// `make bench` from rotting.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function and runs every scenario: not in -short")
	}
	out := t.TempDir()
	opts := defaultOptions()
	opts.N, opts.DrainN, opts.Reps, opts.ProfileRep = 200, 100, 1, 1
	opts.IngestConcurrency = []int{8}
	opts.PacedRate = 1000
	opts.BatchSizes = []int{100}
	opts.SinkDelays = []time.Duration{0}
	opts.DrainConcurrency = 2
	opts.ScrapeRows, opts.Scrapes = []int{2000}, 2
	opts.History = 1000
	opts.LoadPoints, opts.LoadDuration = []int{50}, 2*time.Second
	opts.Soak, opts.SoakSample, opts.SoakHousekeeping = 30*time.Second, 5*time.Second, 10*time.Second
	opts.Out, opts.Profiles = out, filepath.Join(out, "profiles")
	opts.Install = false // a test installs nothing; the Celery runs are skipped without it
	opts.Quick = true
	opts.Timeout = 2 * time.Minute

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log bytes.Buffer
	err := run(ctx, opts, "smoke test", &log)
	t.Logf("bench log:\n%s", log.String())
	if errors.Is(err, privateserver.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	require.NoError(t, err)

	md, err := os.ReadFile(filepath.Join(out, "REPORT.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "QUICK MODE")
	require.Contains(t, string(md), "## What bounds each figure")
	require.Contains(t, string(md), "Pulse's deliver path against River")

	var rep Report
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.True(t, rep.PrivatePostgres && rep.PrivateRedis, "measured on servers of the bench's own")
	require.Equal(t, "on", rep.Machine.PGSettings["synchronous_commit"], "the targets assume synchronous_commit=on")
	require.Equal(t, "on", rep.Machine.PGSettings["autovacuum"], "production vacuums")
	require.Contains(t, rep.Machine.PGNonDefault, PGSetting{Name: "listen_addresses", Value: "127.0.0.1", Source: "configuration file"})
	require.Contains(t, string(md), "| listen_addresses | 127.0.0.1 | configuration file |")
	ran := map[string]bool{}
	for _, s := range rep.Summaries {
		if s.Skipped != "" {
			t.Logf("%s skipped: %s", s.Scenario, s.Skipped)
			continue
		}
		require.Equal(t, 1, s.Runs, "%s: %v", s.Scenario, s.Failures)
		require.Zero(t, s.Errors, s.Scenario)
		require.Zero(t, s.Missing, s.Scenario)
		require.Zero(t, s.Duplicates, s.Scenario)
		ran[s.Scenario] = true
		if s.Scenario == "startup" {
			require.NotEmpty(t, s.Processes)
			continue
		}
		require.Positive(t, s.Throughput.Median, s.Scenario)
	}
	for _, name := range []string{"naive-single-c8", "ingest-single-c8", "ingest-paced-1000", "naive-batch-100",
		"ingest-batch-100", "e2e-sink-0ms", "e2e-load-50", "e2e-email", "drain-river-sink-0ms", "drain-pulse-sink-0ms", "startup"} {
		require.True(t, ran[name], "%s did not run", name)
	}
	require.NotNil(t, rep.Soak)
	require.Empty(t, rep.Soak.Skipped)
	require.Empty(t, rep.Soak.Error)
	require.GreaterOrEqual(t, len(rep.Soak.Samples), 5, "a sample every 5 s for 30 s")
	require.NotEmpty(t, rep.Soak.Verdicts)
	require.Zero(t, rep.Soak.Errors)
	require.Zero(t, rep.Soak.Duplicates)
	for _, sm := range rep.Soak.Samples {
		require.Positive(t, sm.BenchRSS, "the bench's own RSS at %.0f s", sm.At)
	}
	require.Contains(t, string(md), "bench CPU %")
	require.Contains(t, string(md), "### Soak")
	require.Contains(t, string(md), "### End to end: latency against offered load")
	var profiled bool
	for _, r := range rep.Runs {
		if strings.HasPrefix(r.Scenario, "ingest-single") {
			require.Contains(t, r.Profiles, "ingest.cpu")
			require.Contains(t, r.Profiles, "ingest.block")
			profiled = true
		}
	}
	require.True(t, profiled, "the ingest run was profiled")
}
