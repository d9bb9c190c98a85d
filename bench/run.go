package main

import (
	"context"
	"time"

	"github.com/pulse-knative/pulse/bench/pgstat"
	"github.com/pulse-knative/pulse/bench/profile"
	"github.com/pulse-knative/pulse/bench/stats"
)

// Run is one repetition of one scenario.
type Run struct {
	Scenario string `json:"scenario"`
	Rep      int    `json:"rep"`
	// Profiled is true when the functions were CPU- and block-profiled during the run.
	Profiled bool `json:"profiled"`
	// N is the number of notifications measured (warm-up excluded).
	N           int     `json:"n"`
	WallSeconds float64 `json:"wall_seconds"`
	// Throughput is notifications per second: accepted (ingest) or delivered (end to end,
	// drain).
	Throughput float64       `json:"throughput_per_s"`
	Latency    stats.Latency `json:"latency"`
	// Stages split an end-to-end latency: created to sending (queued, streamed, dispatched),
	// sending to delivered (sent and recorded).
	Stages map[string]stats.Latency `json:"stages,omitempty"`
	// Errors counts failed requests or notifications not delivered; Duplicates requests
	// answered as repeats, extra stream entries, or webhooks received more than once.
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	Duplicates int    `json:"duplicates"`
	Missing    int    `json:"missing"`

	Processes []ProcessFigures `json:"processes"`
	Harness   ProcessFigures   `json:"harness"`
	// PostgresBackendCPU is the CPU time of the bench database's backends; PostgresBackground
	// of the server's background processes (WAL writer, checkpointer), which serve every
	// database on the server; RedisCPU of the Redis server, which serves other users too.
	PostgresBackendCPU    float64 `json:"postgres_backend_cpu_seconds"`
	PostgresBackgroundCPU float64 `json:"postgres_background_cpu_seconds"`
	RedisCPU              float64 `json:"redis_cpu_seconds"`
	// CPUPer1000 is the CPU-seconds per 1000 notifications of the system under test: its
	// processes, PostgreSQL (backends and background) and Redis. The bench's own load
	// generator and sink are not in it.
	CPUPer1000 float64 `json:"cpu_seconds_per_1000"`
	// MachineBusy is the part of all cores busy during the window, whoever used them.
	MachineBusy float64       `json:"machine_busy"`
	Postgres    pgstat.Result `json:"postgres"`
	// Profiles sums up each profile taken, by "<process>.cpu" and "<process>.block".
	Profiles     map[string]profile.Summary `json:"profiles,omitempty"`
	ProfileFiles map[string]string          `json:"profile_files,omitempty"`
	// Extra holds figures particular to a scenario.
	Extra map[string]float64 `json:"extra,omitempty"`
	Notes []string           `json:"notes,omitempty"`
}

// absorb takes what a window measured.
func (r *Run) absorb(m measured) {
	r.WallSeconds = m.Wall.Seconds()
	r.Processes = m.Processes
	r.Harness = m.Harness
	r.Postgres = m.Postgres
	r.PostgresBackendCPU = m.Postgres.BackendCPU.Seconds()
	r.PostgresBackgroundCPU = m.Postgres.BackgroundCPU.Seconds()
	r.RedisCPU = m.RedisCPU.Seconds()
	r.MachineBusy = m.MachineBusy
	r.ProfileFiles = m.ProfileFiles
	r.Notes = append(r.Notes, m.ProfileErrors...)
	total := r.PostgresBackendCPU + r.PostgresBackgroundCPU + r.RedisCPU
	for _, p := range r.Processes {
		total += p.CPUSeconds
	}
	if r.Harness.Role == "baseline" {
		total += r.Harness.CPUSeconds
	}
	if r.N > 0 {
		r.CPUPer1000 = total * 1000 / float64(r.N)
	}
}

func (r *Run) extra(k string, v float64) {
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra[k] = v
}

// scenario is one thing the bench measures.
type scenario struct {
	// Name identifies the scenario (and names its profiles' directory).
	Name string
	// Group is the report section; Title the row's name in it.
	Group, Title string
	// Baseline names the scenario this one is compared with, from the same run.
	Baseline string
	// Target is the target for the scenario, if any, as text; Check tells whether a
	// summary meets it.
	Target string
	Check  func(s *Summary) bool
	// Unit is what the throughput counts ("notifications/s", "scrapes/s"...).
	Unit string
	run  func(ctx context.Context, rep int, profile bool) (Run, error)
	// skip, when set, says why the scenario cannot run here.
	skip string
}

// runOne runs a scenario once within the scenario timeout.
func (s scenario) runOne(ctx context.Context, rep int, profile bool, timeout time.Duration) (Run, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := s.run(ctx, rep, profile)
	r.Scenario, r.Rep, r.Profiled = s.Name, rep, profile
	return r, err
}
