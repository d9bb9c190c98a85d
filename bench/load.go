package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/pulse-knative/pulse/bench/loadgen"
)

const (
	// floodScenario is the closed-loop end-to-end run whose throughput the load curve and the
	// soak take their rates from.
	floodScenario = "e2e-sink-0ms"
	// pacedInFlight bounds the requests an open-loop run has outstanding, as ingest-paced's.
	pacedInFlight = 128
	// soakPercent is the soak's offered rate, in percent of the flood throughput.
	soakPercent = 50
)

// loadBase returns the rate the load curve and the soak take percentages of: the median of
// the flood runs done so far, or fallback (-load-base) when there are none, and says which.
func loadBase(flood []float64, fallback float64) (rate float64, from string, err error) {
	var ok []float64
	for _, v := range flood {
		if v > 0 {
			ok = append(ok, v)
		}
	}
	if len(ok) > 0 {
		slices.Sort(ok)
		m := ok[len(ok)/2]
		if len(ok)%2 == 0 {
			m = (ok[len(ok)/2-1] + ok[len(ok)/2]) / 2
		}
		return m, fmt.Sprintf("the median of %d %s run(s) so far, %.0f delivered/s", len(ok), floodScenario, m), nil
	}
	if fallback > 0 {
		return fallback, fmt.Sprintf("-load-base %.0f delivered/s (%s did not run)", fallback, floodScenario), nil
	}
	return 0, "", errors.New("no " + floodScenario + " run to take the rate from and no -load-base")
}

// offered is percent of base, in requests per second, and how many requests a run of
// seconds sends at that rate (at least one).
func offered(base float64, percent int, seconds float64) (rate float64, n int) {
	rate = base * float64(percent) / 100
	return rate, max(1, int(math.Round(rate*seconds)))
}

// floodRates are the throughputs of the flood runs done so far in this run.
func (h *Harness) floodRates() []float64 {
	var out []float64
	for _, r := range h.done {
		if r.Scenario == floodScenario {
			out = append(out, r.Throughput)
		}
	}
	return out
}

// loadScenarios are the end-to-end runs at fixed fractions of the flood throughput: open
// loop, so that latency is measured at a load the system keeps up with.
func (h *Harness) loadScenarios() []scenario {
	var skip string
	if !h.opts.selected(floodScenario) && h.opts.LoadBase == 0 {
		skip = floodScenario + " is not in the run (-only) and -load-base is not given"
	}
	var out []scenario
	for _, pct := range h.opts.LoadPoints {
		sc := scenario{
			Name: fmt.Sprintf("e2e-load-%d", pct), Group: "End to end, latency against offered load",
			Title: fmt.Sprintf("POST to delivered at a steady %d%% of %s's throughput for %s (open loop, at most %d requests in flight); ingest, stream-source, deliver-high as processes; webhook sink answers at once",
				pct, floodScenario, h.opts.LoadDuration, pacedInFlight),
			Unit: "delivered/s",
			skip: skip,
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				base, from, err := loadBase(h.floodRates(), h.opts.LoadBase)
				if err != nil {
					return Run{}, err
				}
				rate, n := offered(base, pct, h.opts.LoadDuration.Seconds())
				paced := func(ctx context.Context, t loadgen.Target, c *loadgen.Client, first, n int) loadgen.Result {
					return loadgen.Paced(ctx, t, c, first, n, rate, pacedInFlight)
				}
				r, err := h.runE2E(ctx, func() (*sink, error) { return startSink(0) }, profile, n, pacedInFlight, paced)
				r.extra("offered_per_s", rate)
				r.extra("base_per_s", base)
				if len(h.floodRates()) == 0 {
					r.Notes = append(r.Notes, "rate base: "+from)
				}
				return r, err
			},
		}
		if pct == soakPercent {
			sc.Target = fmt.Sprintf("p99 ≤ %.0f ms", targetLoadP99MS)
			sc.Check = func(s *Summary) bool { return s.P99.Median <= targetLoadP99MS }
		}
		out = append(out, sc)
	}
	return out
}
