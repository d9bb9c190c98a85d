package pipelinetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pipelinetest"
	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/ingest"
)

// TestReplayRedeliversOnce stores 10,000 notifications that failed during a receiver outage,
// then replays them with two `pulse retry` processes at once against running ingest, deliver
// and stream-source processes: each is delivered exactly once, and a third replay afterwards
// finds nothing to do.
func TestReplayRedeliversOnce(t *testing.T) {
	t.Parallel()
	redisURL, prefix := pulsetest.Redis(t)
	p := pipelinetest.Start(t, pipelinetest.Options{DatabaseURL: pulsetest.DatabaseURL(t), RedisURL: redisURL, Prefix: prefix})
	db := p.DB(t)
	ctx := context.Background()
	const n = 10000
	_, err := db.Exec(ctx, `
		insert into notifications (id, source, event_id, channel, priority, status, recipient, data, attempts,
			max_attempts, last_error, created_at, updated_at, failed_at, finished_at)
		select gen_random_uuid(), 'urn:replay', 'e' || g, 'webhook', case when g % 4 = 0 then 'low' else 'high' end,
			'failed', $1, '{"order": 1}', 3, 3, 'HTTP 503 from receiver',
			now() - g * interval '1 millisecond', now(), now(), now()
		from generate_series(1, $2::int) g`, p.ReceiverURL(), n)
	require.NoError(t, err)

	retry := func() (ingest.BulkAnswer, int, string) {
		cmd := p.Command(ctx, "pulse", "retry", "--status", "failed", "--error", "HTTP 503", "--reason", "receiver back", "-o", "json")
		out, err := cmd.Output()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		var a ingest.BulkAnswer
		_ = json.Unmarshal(out, &a)
		stderr := ""
		if ee != nil {
			stderr = string(ee.Stderr)
		}
		return a, code, stderr
	}
	var wg sync.WaitGroup
	answers := make([]ingest.BulkAnswer, 2)
	for i := range answers {
		wg.Go(func() {
			a, code, stderr := retry()
			if code != 0 && code != 3 { // 3: the other process moved everything first
				t.Errorf("pulse retry exited %d: %s", code, stderr)
			}
			answers[i] = a
		})
	}
	wg.Wait()
	moved := map[string]int{}
	for _, a := range answers {
		for _, id := range a.IDs {
			moved[id]++
		}
	}
	require.Len(t, moved, n, "between them the two replays moved every notification")
	for id, c := range moved {
		require.Equal(t, 1, c, "notification %s moved by both replays", id)
	}

	pipelinetest.WaitFor(t, 3*time.Minute, func() bool {
		return pipelinetest.StatusCounts(t, db)["delivered"] == n
	}, func() string { return fmt.Sprint(pipelinetest.StatusCounts(t, db)) })
	_, code, _ := retry()
	require.Equal(t, 3, code, "nothing is left to replay")

	total, distinct, invalid := p.Receiver.Stats()
	require.Equal(t, n, total, "deliveries")
	require.Equal(t, n, distinct)
	require.Zero(t, invalid)
	for id := range moved {
		require.Equal(t, 1, p.Receiver.Count(id), "notification %s", id)
	}
}
