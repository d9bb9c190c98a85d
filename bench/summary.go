package main

import (
	"slices"
	"sort"

	"github.com/pulse-knative/pulse/bench/pgstat"
	"github.com/pulse-knative/pulse/bench/profile"
	"github.com/pulse-knative/pulse/bench/stats"
)

// ProcessSummary is one process's figures over a scenario's repetitions.
type ProcessSummary struct {
	Name       string       `json:"name"`
	Role       string       `json:"role"`
	PeakRSSMB  stats.Spread `json:"peak_rss_mb"`
	SumRSSMB   stats.Spread `json:"sum_peak_rss_mb"`
	Processes  int          `json:"processes"`
	CPUPer1000 stats.Spread `json:"cpu_seconds_per_1000"`
	ReadyMS    stats.Spread `json:"ready_ms"`
	// HeapPeakMB and HeapLiveMB are the Go heap figures of ProcessFigures.
	HeapPeakMB stats.Spread `json:"heap_peak_mb"`
	HeapLiveMB stats.Spread `json:"heap_live_mb"`
	// CPUShare is the median part of the machine's cores the process used over the window.
	CPUShare float64 `json:"cpu_share"`
}

// Summary is one scenario over its repetitions.
type Summary struct {
	Scenario string `json:"scenario"`
	Group    string `json:"group"`
	Title    string `json:"title"`
	Unit     string `json:"unit"`
	Baseline string `json:"baseline,omitempty"`
	Target   string `json:"target,omitempty"`
	// Skipped says why the scenario did not run.
	Skipped string `json:"skipped,omitempty"`
	// Failures are the errors of repetitions that failed.
	Failures []string `json:"failures,omitempty"`
	Runs     int      `json:"runs"`
	N        int      `json:"n"`

	Throughput stats.Spread `json:"throughput_per_s"`
	P50        stats.Spread `json:"p50_ms"`
	P90        stats.Spread `json:"p90_ms"`
	P99        stats.Spread `json:"p99_ms"`
	MaxMS      stats.Spread `json:"max_ms"`
	CPUPer1000 stats.Spread `json:"cpu_seconds_per_1000"`
	// The parts of CPUPer1000 outside the processes, per 1000 notifications.
	PGBackendPer1000    stats.Spread     `json:"postgres_backend_cpu_per_1000"`
	PGBackgroundPer1000 stats.Spread     `json:"postgres_background_cpu_per_1000"`
	RedisPer1000        stats.Spread     `json:"redis_cpu_per_1000"`
	HarnessPer1000      stats.Spread     `json:"harness_cpu_per_1000"`
	MachineBusy         stats.Spread     `json:"machine_busy"`
	Errors              int              `json:"errors"`
	Duplicates          int              `json:"duplicates"`
	Missing             int              `json:"missing"`
	Processes           []ProcessSummary `json:"processes"`
	// Postgres are the wait states of the bench database's backends and of the server's
	// background processes, averaged over the repetitions.
	PGStates   []pgstat.Share `json:"postgres_states"`
	PGBGStates []pgstat.Share `json:"postgres_background_states"`
	// BaselineThroughput is the baseline's median; Ratio this scenario's median over it.
	BaselineThroughput float64 `json:"baseline_throughput_per_s,omitempty"`
	Ratio              float64 `json:"ratio,omitempty"`
	// Met is whether the target is met (nil: no target, or not measured).
	Met *bool `json:"met,omitempty"`
	// Profiles are the profiled repetition's.
	Profiles map[string]profile.Summary `json:"profiles,omitempty"`
	Extra    map[string]stats.Spread    `json:"extra,omitempty"`
	Stages   map[string]stats.Spread    `json:"stage_p99_ms,omitempty"`
	Notes    []string                   `json:"notes,omitempty"`
}

// summarise sums each scenario's runs up, in the scenarios' order.
func summarise(scenarios []scenario, runs []Run, failures map[string][]string, cores int) []*Summary {
	byName := map[string]*Summary{}
	var out []*Summary
	for _, sc := range scenarios {
		s := &Summary{Scenario: sc.Name, Group: sc.Group, Title: sc.Title, Unit: sc.Unit, Baseline: sc.Baseline,
			Target: sc.Target, Skipped: sc.skip, Failures: failures[sc.Name]}
		var rs []Run
		for _, r := range runs {
			if r.Scenario == sc.Name {
				rs = append(rs, r)
			}
		}
		fill(s, rs, cores)
		byName[sc.Name] = s
		out = append(out, s)
	}
	for i, sc := range scenarios {
		s := out[i]
		if b, ok := byName[sc.Baseline]; ok && b.Runs > 0 && s.Runs > 0 && b.Throughput.Median > 0 {
			s.BaselineThroughput = b.Throughput.Median
			s.Ratio = s.Throughput.Median / b.Throughput.Median
		}
		if sc.Check != nil && s.Runs > 0 {
			met := sc.Check(s)
			s.Met = &met
		}
	}
	return out
}

func fill(s *Summary, rs []Run, cores int) {
	s.Runs = len(rs)
	if len(rs) == 0 {
		return
	}
	s.N = rs[0].N
	col := func(f func(r Run) float64) stats.Spread {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		return stats.Of(vs)
	}
	per1000 := func(f func(r Run) float64) stats.Spread {
		return col(func(r Run) float64 {
			if r.N == 0 {
				return 0
			}
			return f(r) * 1000 / float64(r.N)
		})
	}
	s.Throughput = col(func(r Run) float64 { return r.Throughput })
	s.P50 = col(func(r Run) float64 { return r.Latency.P50 })
	s.P90 = col(func(r Run) float64 { return r.Latency.P90 })
	s.P99 = col(func(r Run) float64 { return r.Latency.P99 })
	s.MaxMS = col(func(r Run) float64 { return r.Latency.Max })
	s.CPUPer1000 = col(func(r Run) float64 { return r.CPUPer1000 })
	s.PGBackendPer1000 = per1000(func(r Run) float64 { return r.PostgresBackendCPU })
	s.PGBackgroundPer1000 = per1000(func(r Run) float64 { return r.PostgresBackgroundCPU })
	s.RedisPer1000 = per1000(func(r Run) float64 { return r.RedisCPU })
	s.HarnessPer1000 = per1000(func(r Run) float64 { return r.Harness.CPUSeconds })
	s.MachineBusy = col(func(r Run) float64 { return r.MachineBusy })
	for _, r := range rs {
		s.Errors += r.Errors
		s.Duplicates += r.Duplicates
		s.Missing += r.Missing
		for _, n := range r.Notes {
			if !slices.Contains(s.Notes, n) {
				s.Notes = append(s.Notes, n)
			}
		}
		if r.Profiled && len(r.Profiles) > 0 {
			s.Profiles = r.Profiles
		}
		if r.FirstError != "" {
			note := "first error: " + r.FirstError
			if !slices.Contains(s.Notes, note) {
				s.Notes = append(s.Notes, note)
			}
		}
	}
	// Processes, by name, in the first run's order.
	for _, p0 := range rs[0].Processes {
		ps := ProcessSummary{Name: p0.Name, Role: p0.Role, Processes: p0.Processes}
		pick := func(f func(p ProcessFigures, r Run) float64) stats.Spread {
			var vs []float64
			for _, r := range rs {
				for _, p := range r.Processes {
					if p.Name == p0.Name {
						vs = append(vs, f(p, r))
					}
				}
			}
			return stats.Of(vs)
		}
		ps.PeakRSSMB = pick(func(p ProcessFigures, _ Run) float64 { return p.PeakRSSMB })
		ps.SumRSSMB = pick(func(p ProcessFigures, _ Run) float64 { return p.SumPeakRSSMB })
		ps.CPUPer1000 = pick(func(p ProcessFigures, _ Run) float64 { return p.CPUPer1000 })
		ps.ReadyMS = pick(func(p ProcessFigures, _ Run) float64 { return p.ReadyMS })
		ps.HeapPeakMB = pick(func(p ProcessFigures, _ Run) float64 { return p.HeapPeakMB })
		ps.HeapLiveMB = pick(func(p ProcessFigures, _ Run) float64 { return p.HeapLiveMB })
		ps.CPUShare = pick(func(p ProcessFigures, r Run) float64 {
			if r.WallSeconds == 0 {
				return 0
			}
			return p.CPUSeconds / (r.WallSeconds * float64(cores))
		}).Median
		s.Processes = append(s.Processes, ps)
	}
	// Wait states, averaged over the runs.
	s.PGStates = meanShares(rs, func(r Run) []pgstat.Share { return r.Postgres.States })
	s.PGBGStates = meanShares(rs, func(r Run) []pgstat.Share { return r.Postgres.Background })
	extras := map[string][]float64{}
	for _, r := range rs {
		for k, v := range r.Extra {
			extras[k] = append(extras[k], v)
		}
	}
	if len(extras) > 0 {
		s.Extra = map[string]stats.Spread{}
		for k, vs := range extras {
			s.Extra[k] = stats.Of(vs)
		}
	}
	stages := map[string][]float64{}
	for _, r := range rs {
		for k, v := range r.Stages {
			stages[k] = append(stages[k], v.P99)
		}
	}
	if len(stages) > 0 {
		s.Stages = map[string]stats.Spread{}
		for k, vs := range stages {
			s.Stages[k] = stats.Of(vs)
		}
	}
}

func meanShares(rs []Run, get func(Run) []pgstat.Share) []pgstat.Share {
	frac, backends := map[string]float64{}, map[string]float64{}
	for _, r := range rs {
		for _, sh := range get(r) {
			frac[sh.State] += sh.Fraction / float64(len(rs))
			backends[sh.State] += sh.Backends / float64(len(rs))
		}
	}
	out := make([]pgstat.Share, 0, len(frac))
	for k, f := range frac {
		out = append(out, pgstat.Share{State: k, Fraction: f, Backends: backends[k]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Fraction != out[j].Fraction {
			return out[i].Fraction > out[j].Fraction
		}
		return out[i].State < out[j].State
	})
	return out
}
