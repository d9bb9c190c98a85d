package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
)

func TestProviderMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Two pods: one has the primary's breaker open, the other half-open; a third pod's open
	// report ran out long ago (the pod scaled away). The backup's breaker closed again.
	require.NoError(t, b.recorder.Breaker(ctx, "email", "primary", "pod-a", 2, scrapeTime.Add(10*time.Second)))
	require.NoError(t, b.recorder.Breaker(ctx, "email", "primary", "pod-b", 1, scrapeTime.Add(10*time.Second)))
	require.NoError(t, b.recorder.Breaker(ctx, "sms", "main", "pod-gone", 2, scrapeTime.Add(-time.Hour)))
	require.NoError(t, b.recorder.Breaker(ctx, "email", "backup", "pod-a", 2, scrapeTime.Add(10*time.Second)))
	require.NoError(t, b.recorder.Breaker(ctx, "email", "backup", "pod-a", 0, time.Time{}))
	for range 3 {
		require.NoError(t, b.recorder.Throttled(ctx, "email", "primary"))
	}
	require.NoError(t, b.recorder.Throttled(ctx, "sms", "main"))

	families := scrape(t, serve(t, b.exporter()), nil)
	got := flatten(map[string]*dto.MetricFamily{
		"pulse_provider_breaker_state":   families["pulse_provider_breaker_state"],
		"pulse_provider_throttled_total": families["pulse_provider_throttled_total"],
	})
	want := map[string]float64{
		`pulse_provider_breaker_state{account="primary",channel="email"}`: 2,
		`pulse_provider_breaker_state{account="backup",channel="email"}`:  0,
		`pulse_provider_breaker_state{account="main",channel="sms"}`:      0,
		`pulse_provider_throttled_total{provider="email/primary"}`:        3,
		`pulse_provider_throttled_total{provider="sms/main"}`:             1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("provider metrics (-want +got):\n%s", diff)
	}
	stale, err := b.redis.HExists(ctx, b.keys.Breakers(), recorder.BreakerField("sms", "main", "pod-gone")).Result()
	require.NoError(t, err)
	require.False(t, stale, "a stale report is deleted")
}
