package stats_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pulse-knative/pulse/bench/stats"
)

func TestLatencies(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	want := stats.Latency{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if diff := cmp.Diff(want, stats.Latencies(ds)); diff != "" {
		t.Errorf("Latencies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(stats.Latency{}, stats.Latencies(nil)); diff != "" {
		t.Errorf("Latencies(nil) (-want +got):\n%s", diff)
	}
}

func TestOf(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in   []float64
		want stats.Spread
	}{
		"odd":   {in: []float64{3, 1, 2}, want: stats.Spread{Median: 2, Min: 1, Max: 3, Values: []float64{3, 1, 2}}},
		"even":  {in: []float64{4, 1, 3, 2}, want: stats.Spread{Median: 2.5, Min: 1, Max: 4, Values: []float64{4, 1, 3, 2}}},
		"one":   {in: []float64{7}, want: stats.Spread{Median: 7, Min: 7, Max: 7, Values: []float64{7}}},
		"empty": {in: nil, want: stats.Spread{}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, stats.Of(tc.in)); diff != "" {
				t.Errorf("Of (-want +got):\n%s", diff)
			}
		})
	}
}
