package pipelinetest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pipelinetest"
	"github.com/pulse-knative/pulse/internal/pulsetest"
)

func TestMain(m *testing.M) { pipelinetest.Main(m) }

// TestEndToEnd posts 1000 notifications through running functions and stream sources: every
// one is delivered, and received exactly once.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	redisURL, prefix := pulsetest.Redis(t)
	p := pipelinetest.Start(t, pipelinetest.Options{DatabaseURL: pulsetest.DatabaseURL(t), RedisURL: redisURL, Prefix: prefix})
	const n = 1000
	ids := p.SendWebhooks(t, n, 16, func(i int) string {
		if i%4 == 0 {
			return "low"
		}
		return "high"
	})
	db := p.DB(t)
	pipelinetest.WaitFor(t, 2*time.Minute, func() bool {
		return pipelinetest.StatusCounts(t, db)["delivered"] == n
	}, func() string { return fmt.Sprint(pipelinetest.StatusCounts(t, db)) })

	total, distinct, invalid := p.Receiver.Stats()
	require.Equal(t, n, total, "deliveries")
	require.Equal(t, n, distinct)
	require.Zero(t, invalid, "deliveries with a bad signature")
	for _, id := range ids {
		require.Equal(t, 1, p.Receiver.Count(id), "notification %s", id)
	}
}
