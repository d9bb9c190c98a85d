package queue_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// TestSetLogger checks that a line go-redis logs itself reaches the function's JSON log at
// warn instead of go-redis's plain-text stderr. go-redis's logger is per process, so the test
// does not run in parallel with others that could log through it.
func TestSetLogger(t *testing.T) {
	url, prefix := pulsetest.Redis(t)
	var buf pulsetest.SyncBuffer
	queue.SetLogger(observe.NewLogger(&buf, "info", "test"))
	t.Cleanup(func() { queue.SetLogger(observe.NewLogger(&strings.Builder{}, "error", "test")) })

	client, err := queue.Open(config.Redis{URL: url, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	// go-redis logs a notice when it rounds an expiry below its resolution up to 1 ms.
	require.NoError(t, client.Set(t.Context(), "{"+prefix+"}:logger", "v", time.Microsecond).Err())

	line, _, _ := strings.Cut(buf.String(), "\n")
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &got), "a JSON line, not %q", buf.String())
	require.Contains(t, got["msg"], "truncating to 1ms")
	delete(got, "msg")
	delete(got, "time")
	delete(got, "version")
	want := map[string]any{"level": "WARN", "function": "test", "component": "go-redis"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}
