package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/bench/stats"
)

func TestRiverComparison(t *testing.T) {
	t.Parallel()
	drain := func(name string, rate, cpu float64, rss ...float64) *Summary {
		s := &Summary{Scenario: name, Runs: 1, Throughput: stats.Spread{Median: rate}, CPUPer1000: stats.Spread{Median: cpu}}
		for _, v := range rss {
			s.Processes = append(s.Processes, ProcessSummary{PeakRSSMB: stats.Spread{Max: v}})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		sums []*Summary
		want []string
	}{
		{"both delays", []*Summary{
			drain("drain-celery-sink-0ms", 800, 3, 60),
			drain("drain-river-sink-0ms", 2000, 0.9, 24),
			drain("drain-pulse-sink-0ms", 3000, 0.6, 20, 31),
			drain("drain-river-sink-10ms", 700, 0.5, 22),
			drain("drain-pulse-sink-10ms", 750, 0.4, 18, 25),
		}, []string{"| 0ms | 3000 | 2000 | 1.50× | 0.60 / 0.90 | 31 / 24 |", "| 10ms | 750 | 700 | 1.07× | 0.40 / 0.50 | 25 / 22 |"}},
		{"River did not run", []*Summary{
			{Scenario: "drain-river-sink-0ms", Failures: []string{"boom"}},
			drain("drain-pulse-sink-0ms", 3000, 0.6, 20),
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			riverComparison(&b, tc.sums)
			if tc.want == nil {
				require.Empty(t, b.String())
				return
			}
			for _, row := range tc.want {
				require.Contains(t, b.String(), row+"\n")
			}
		})
	}
}
