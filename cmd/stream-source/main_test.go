package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/queue"
)

const waitFor = 30 * time.Second

// build compiles this command into a temporary directory and returns the binary's path.
func build(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the binary under test")
	bin := filepath.Join(t.TempDir(), "stream-source")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// environ returns this process's environment without Pulse's and Knative's variables, plus
// env.
func environ(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULSE_") && !strings.HasPrefix(kv, "K_SINK=") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// start runs the binary with env and returns it; its output is logged when the test fails,
// and it is killed when the test ends if it still runs.
func start(t *testing.T, bin, name string, env ...string) *exec.Cmd {
	t.Helper()
	var out pulsetest.SyncBuffer
	cmd := exec.Command(bin)
	cmd.Env = environ(env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// TestKilledConsumerEntryIsReclaimed kills a stream source while its sink holds the request,
// then checks that a second consumer claims the entry, sends it and acknowledges it.
func TestKilledConsumerEntryIsReclaimed(t *testing.T) {
	t.Parallel()
	bin := build(t)
	redisURL, prefix := pulsetest.Redis(t)
	opts, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	keys := queue.NewKeys(prefix)
	stream := keys.Stream("high")

	type arrival struct {
		id         string
		consumer   string
		deliveries int64
	}
	first, second := make(chan string, 1), make(chan arrival, 1)
	testDone := make(chan struct{})
	var mu sync.Mutex
	attempts := 0
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body: only then does the server watch the connection and cancel the
		// request's context when the client goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("Ce-Id")
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n == 1 {
			first <- id
			// Hold the request until its sender dies.
			select {
			case <-r.Context().Done():
			case <-testDone:
			}
			return
		}
		// Who holds the entry now, and how often it was delivered.
		p, err := client.XPendingExt(r.Context(), &redis.XPendingExtArgs{
			Stream: stream, Group: "pulse-deliver", Start: id, End: id, Count: 1,
		}).Result()
		if err != nil || len(p) != 1 {
			t.Errorf("pending entry %s: %v %v", id, p, err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		select {
		case second <- arrival{id: id, consumer: p[0].Consumer, deliveries: p[0].RetryCount}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(sink.Close)
	t.Cleanup(func() { close(testDone) })

	env := []string{
		"PULSE_REDIS_URL=" + redisURL,
		"PULSE_REDIS_PREFIX=" + prefix,
		"PULSE_PRIORITY=high",
		"K_SINK=" + sink.URL,
		"PULSE_SINK_TIMEOUT=1s",
		"PULSE_STREAM_RECLAIM_IDLE=1500ms",
		"PULSE_LOG_LEVEL=debug",
	}
	id, err := client.XAdd(context.Background(), &redis.XAddArgs{
		Stream: stream,
		Values: []string{queue.FieldNotificationID, "n1", queue.FieldChannel, "email", queue.FieldEnqueuedAt, "1700000000000"},
	}).Result()
	require.NoError(t, err)

	a := start(t, bin, "consumer-a", append(env, "PULSE_STREAM_CONSUMER=consumer-a")...)
	select {
	case got := <-first:
		require.Equal(t, id, got)
	case <-time.After(waitFor):
		t.Fatal("consumer-a never sent the entry")
	}
	require.NoError(t, a.Process.Signal(syscall.SIGKILL))
	_ = a.Wait()

	b := start(t, bin, "consumer-b", append(env, "PULSE_STREAM_CONSUMER=consumer-b")...)
	select {
	case got := <-second:
		require.Equal(t, arrival{id: id, consumer: "consumer-b", deliveries: 2}, got)
	case <-time.After(waitFor):
		t.Fatal("consumer-b never sent the entry")
	}
	require.Eventually(t, func() bool {
		p, err := client.XPending(context.Background(), stream, "pulse-deliver").Result()
		return err == nil && p.Count == 0
	}, waitFor, 20*time.Millisecond, "the entry ends acknowledged")

	// SIGTERM is a clean stop.
	require.NoError(t, b.Process.Signal(syscall.SIGTERM))
	require.NoError(t, b.Wait())
	groups, err := client.XInfoGroups(context.Background(), stream).Result()
	require.NoError(t, err)
	require.Len(t, groups, 1, "the group survives shutdown")
}

func TestBadConfigurationExits(t *testing.T) {
	t.Parallel()
	bin := build(t)
	cmd := exec.Command(bin)
	cmd.Env = environ("PULSE_REDIS_URL=redis://:secret@127.0.0.1:1/0", "PULSE_PRIORITY=medium", "K_SINK=http://127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), "PULSE_PRIORITY")
	require.NotContains(t, string(out), "secret")
}
