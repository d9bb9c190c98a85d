package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/bench/stats"
	"github.com/pulse-knative/pulse/internal/devping"
)

func TestLoadBase(t *testing.T) {
	rate, from, err := loadBase([]float64{900, 0, 1100, 1000}, 500)
	require.NoError(t, err)
	require.Equal(t, 1000.0, rate, "the median of the runs that delivered, not the fallback")
	require.Contains(t, from, "median of 3")

	rate, _, err = loadBase([]float64{800, 1000}, 0)
	require.NoError(t, err)
	require.Equal(t, 900.0, rate, "an even count takes the mean of the middle two")

	rate, from, err = loadBase(nil, 750)
	require.NoError(t, err)
	require.Equal(t, 750.0, rate)
	require.Contains(t, from, "-load-base")

	_, _, err = loadBase([]float64{0}, 0)
	require.ErrorContains(t, err, "-load-base")
}

func TestOffered(t *testing.T) {
	rate, n := offered(2000, 25, 30)
	require.Equal(t, 500.0, rate)
	require.Equal(t, 15000, n)
	rate, n = offered(3, 25, 1)
	require.Equal(t, 0.75, rate)
	require.Equal(t, 1, n, "a point sends at least one request")
}

func TestHousekeepingPeriod(t *testing.T) {
	for want, got := range map[time.Duration]time.Duration{
		time.Second:      10 * time.Second,
		20 * time.Second: 20 * time.Second,
		30 * time.Second: 30 * time.Second, // -soak 3m
		50 * time.Second: 30 * time.Second,
		10 * time.Minute: 10 * time.Minute, // -soak 1h
		7 * time.Minute:  6 * time.Minute,
		5 * time.Hour:    time.Hour,
	} {
		require.Equal(t, got, housekeepingPeriod(want), "for %s", want)
	}
}

// TestManifestHousekeeping: the soak plays config/'s schedules as they are, so purge and trim
// run there as often as in a cluster: every minute, each with a minute of traffic to handle.
func TestManifestHousekeeping(t *testing.T) {
	pings, err := devping.LoadPingSources(filepath.Join("..", "config"))
	require.NoError(t, err)
	for _, name := range []string{"cron-purge", "cron-trim"} {
		every, err := pingPeriod(pings, name)
		require.NoError(t, err)
		require.Equal(t, time.Minute, every, name)
	}
	_, err = pingPeriod(pings, "cron-vacuum")
	require.ErrorContains(t, err, "no PingSource cron-vacuum")
}

// TestSoakSchedules rewrites the repository's cron schedules as the soak does and loads them
// as `pulse dev` does: purge and trim run every period, the other jobs keep their schedules.
func TestSoakSchedules(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join("..", "config", "40-cron-schedules.yaml"))
	require.NoError(t, err)
	for _, period := range []time.Duration{20 * time.Second, 10 * time.Minute, time.Hour} {
		every := cronEvery(period)
		out, err := soakSchedules(string(manifest), map[string]string{"cron-purge": every, "cron-trim": every})
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "40-cron-schedules.yaml"), []byte(out), 0o600))
		pings, err := devping.LoadPingSources(dir)
		require.NoError(t, err)
		byName := map[string]devping.Ping{}
		for _, p := range pings {
			byName[p.Name] = p
		}
		at := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
		for _, name := range []string{"cron-purge", "cron-trim"} {
			p, ok := byName[name]
			require.True(t, ok, name)
			first := p.Next(at)
			require.Equal(t, period, p.Next(first).Sub(first), "%s runs every %s (%s)", name, period, p.Schedule)
		}
		release := byName["cron-release"]
		require.Equal(t, "*/10 * * * * *", release.Schedule, "the other jobs keep their schedules")
		require.Len(t, pings, 5)
	}
	_, err = soakSchedules(string(manifest), map[string]string{"cron-vacuum": "* * * * *"})
	require.ErrorContains(t, err, "cron-vacuum")
}

// steadySoak is a soak of n samples every 10 s at 100/s with purge every 20 s in which
// nothing drifts; change alters sample i.
func steadySoak(n int, change func(i int, s *SoakSample)) []SoakSample {
	var out []SoakSample
	for i := range n {
		s := SoakSample{At: float64(10 * (i + 1)), Delivered: 1000,
			RSS:             map[string]int64{"ingest": 30 << 20, "deliver-high": 25 << 20},
			Streams:         map[string]int64{"stream:high": 1500},
			RedisUsedMemory: 2 << 20,
			Relations: []SoakRelation{
				{Name: "notifications", Table: "notifications", LiveTuples: 4000, DeadTuples: 300, Bytes: 2 << 20, TotalBytes: 4 << 20},
				{Name: "notifications_pkey", Table: "notifications", Index: true, Bytes: 1 << 20, TotalBytes: 1 << 20},
			},
		}
		for k := range 1000 {
			s.latencies = append(s.latencies, float64(5+k%20)) // p99 24 ms
		}
		if change != nil {
			change(i, &s)
		}
		out = append(out, s)
	}
	return out
}

func verdictsOf(samples []SoakSample) map[string]SoakVerdict {
	out := map[string]SoakVerdict{}
	for _, v := range soakVerdicts(samples, 2*time.Minute, 10*time.Second, 20*time.Second, 20*time.Second, 100, 1000) {
		key, _, _ := strings.Cut(v.What, ":")
		key, _, _ = strings.Cut(key, " ")
		out[key] = v
	}
	return out
}

func TestSoakVerdicts(t *testing.T) {
	t.Run("steady", func(t *testing.T) {
		vs := verdictsOf(steadySoak(12, nil))
		for _, k := range []string{"p99", "notifications", "purge", "trim", "ingest", "deliver-high"} {
			v, ok := vs[k]
			require.True(t, ok, "verdict %s: %v", k, vs)
			require.True(t, v.OK, "%s: %s", v.What, v.Figure)
		}
		require.Len(t, vs, 6)
	})
	t.Run("p99 drifts", func(t *testing.T) {
		vs := verdictsOf(steadySoak(12, func(i int, s *SoakSample) {
			if i >= 10 { // the last window: 2m / 6 = 20 s, two samples
				for k := range s.latencies {
					s.latencies[k] *= 1.3
				}
			}
		}))
		require.False(t, vs["p99"].OK, vs["p99"].Figure)
		require.Contains(t, vs["p99"].Figure, "+30%")
		require.True(t, vs["ingest"].OK)
	})
	t.Run("RSS grows", func(t *testing.T) {
		vs := verdictsOf(steadySoak(12, func(i int, s *SoakSample) { s.RSS["ingest"] += int64(i) << 20 }))
		require.False(t, vs["ingest"].OK, vs["ingest"].Figure)
		require.True(t, vs["deliver-high"].OK)
	})
	t.Run("table bloats while live rows stay", func(t *testing.T) {
		vs := verdictsOf(steadySoak(12, func(i int, s *SoakSample) { s.Relations[0].TotalBytes += int64(i) << 20 }))
		require.False(t, vs["notifications"].OK, vs["notifications"].Figure)
	})
	t.Run("table grows with its live rows", func(t *testing.T) {
		vs := verdictsOf(steadySoak(12, func(i int, s *SoakSample) {
			s.Relations[0].LiveTuples *= int64(i + 1)
			s.Relations[0].TotalBytes *= int64(i + 1)
		}))
		require.True(t, vs["notifications"].OK, "size per live row is flat: %s", vs["notifications"].Figure)
		require.False(t, vs["purge"].OK, "but purge does not keep up: %s", vs["purge"].Figure)
	})
	t.Run("a stream is not trimmed", func(t *testing.T) {
		vs := verdictsOf(steadySoak(12, func(i int, s *SoakSample) { s.Streams["stream:high"] = int64(1000 * (i + 1)) }))
		require.False(t, vs["trim"].OK, vs["trim"].Figure)
		require.Contains(t, vs["trim"].Figure, "stream:high")
	})
	t.Run("too short", func(t *testing.T) {
		vs := soakVerdicts(steadySoak(1, nil), time.Minute, time.Minute, 10*time.Second, 10*time.Second, 100, 0)
		require.Len(t, vs, 1)
		require.False(t, vs[0].OK)
	})
}

func TestTargetRows(t *testing.T) {
	yes := true
	sums := []*Summary{
		{Scenario: floodScenario, Runs: 1, Throughput: stats.Spread{Median: 4500}, Baseline: "drain-celery-sink-0ms", BaselineThroughput: 500, Ratio: 9},
		{Scenario: "drain-pulse-sink-0ms", Runs: 1, Throughput: stats.Spread{Median: 1500}, Baseline: "drain-celery-sink-0ms", BaselineThroughput: 500, Ratio: 3,
			CPUPer1000: stats.Spread{Median: 1.6}},
		{Scenario: "e2e-load-50", Runs: 1, P99: stats.Spread{Median: 120}, Extra: map[string]stats.Spread{"offered_per_s": {Median: 2250}}},
		{Scenario: "ingest-batch-100", Runs: 1, Throughput: stats.Spread{Median: 900}, Baseline: "naive-batch-100", BaselineThroughput: 1000, Ratio: 0.9, Met: &yes},
	}
	soak := &SoakResult{Seconds: 120, Verdicts: []SoakVerdict{{What: "p99 of the last 20s within 25% of the first 20s's", Figure: "30.0 ms vs 25.0 ms (+20%)", OK: true}}}
	rows := map[string]targetRow{}
	for _, r := range targetRows(sums, soak, 2) {
		rows[r.target] = r
	}
	get := func(prefix string) targetRow {
		for k, r := range rows {
			if strings.HasPrefix(k, prefix) {
				return r
			}
		}
		t.Fatalf("no target row %q in %v", prefix, rows)
		return targetRow{}
	}
	require.Equal(t, "met", get("end to end ≥ 8×").verdict)
	require.Equal(t, "**missed**", get("deliver path alone at Celery's").verdict)
	require.Contains(t, get("deliver path alone at Celery's").figure,
		"CPU: 1.60 CPU-s/1000 fill 2 cores at 1250/s, the target's 2000/s needs ≤ 1.00", "a missed target says what it asks of the CPU")
	require.NotContains(t, get("end to end ≥ 8×").figure, "CPU:", "a met target does not")
	river := get("deliver path alone ahead of River")
	require.Contains(t, river.figure, "not run")
	require.Contains(t, river.figure, riverScenario)
	require.Equal(t, "**missed**", get("end-to-end p99 ≤ 100 ms").verdict)
	require.Equal(t, "met", get("… and stable").verdict)
	require.Equal(t, "met", get("batch ingest").verdict)
	require.Contains(t, get("single-event ingest").figure, "not run")
	require.Contains(t, get("each function ready").figure, "not run")

	sums = append(sums, &Summary{Scenario: riverScenario, Runs: 1, Throughput: stats.Spread{Median: 1200}})
	for _, r := range targetRows(sums, nil, 2) {
		if strings.HasPrefix(r.target, "deliver path alone ahead of River") {
			require.Equal(t, "met", r.verdict, r.figure)
		}
		if strings.HasPrefix(r.target, "… and stable") {
			require.Contains(t, r.figure, "not run")
		}
	}
}
