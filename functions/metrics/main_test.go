package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
)

// runMainVar makes the test binary run main instead of the tests, so a test can start the
// function as a process of its own and send it signals.
const runMainVar = "PULSE_METRICS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainVar) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is the function running as a process of its own.
type process struct {
	cmd *exec.Cmd
	out *bytes.Buffer // stdout and stderr; read it only once done is closed
	// done is closed when the process has exited, err is then its exit error.
	done chan struct{}
	err  error
}

// startMain starts the function with env (and none of this process's PULSE_ variables) and
// kills it, if it still runs, when the test ends.
func startMain(t *testing.T, env ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULSE_") && !strings.HasPrefix(kv, "PORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append([]string{runMainVar + "=1"}, env...)...)
	p := &process{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	require.NoError(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// allCollectorsSucceed reports whether a scrape reports its collectors (every scrape reports
// each one), each successful.
func allCollectorsSucceed(scrape string) bool {
	n := 0
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, "pulse_scrape_collector_success{") {
			if !strings.HasSuffix(line, "} 1") {
				return false
			}
			n++
		}
	}
	return n > 0
}

func TestServesMetricsAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	databaseURL := pulsetest.DatabaseURL(t)
	redisURL, prefix := pulsetest.Redis(t)
	port := pulsetest.FreePort(t)
	p := startMain(t,
		"PULSE_DATABASE_URL="+databaseURL, "PULSE_REDIS_URL="+redisURL, "PULSE_REDIS_PREFIX="+prefix,
		"PORT="+strconv.Itoa(port), "PULSE_SHUTDOWN_TIMEOUT=2s")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	// The function serves at once and migrates meanwhile: wait until every collector succeeds.
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var body string
	for body = get(base + "/metrics"); !allCollectorsSucceed(body); body = get(base + "/metrics") {
		select {
		case <-p.done:
			t.Fatalf("metrics exited: %v\n%s", p.err, p.out)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			<-p.done
			t.Fatalf("the collectors never all succeeded; last scrape:\n%s\nlogs:\n%s", body, p.out)
		}
	}
	for _, family := range []string{"pulse_queue_length", "pulse_notifications_by_status", "pulse_notification_failure_rate",
		"pulse_notification_delivery_latency_seconds", "pulse_delivery_attempts_total", "go_goroutines"} {
		require.Contains(t, body, "\n# TYPE "+family+" ", "family %s", family)
	}

	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.NoError(t, p.err, "exit status after SIGTERM\n%s", p.out)
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("still running 30s after SIGTERM\n%s", p.out)
	}
	require.Contains(t, p.out.String(), `"function":"metrics"`)
	require.NotContains(t, p.out.String(), databaseURL, "the logs hold a connection string")
}

func TestRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	for name, env := range map[string][]string{
		"no database":      {"PULSE_REDIS_URL=redis://127.0.0.1:1/0"},
		"window too short": {"PULSE_DATABASE_URL=postgres://x@127.0.0.1:1/x", "PULSE_REDIS_URL=redis://127.0.0.1:1/0", "PULSE_METRICS_FAILURE_WINDOW=10s"},
		"timeout too long": {"PULSE_DATABASE_URL=postgres://x@127.0.0.1:1/x", "PULSE_REDIS_URL=redis://127.0.0.1:1/0", "PULSE_METRICS_SCRAPE_TIMEOUT=2m"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := startMain(t, env...)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				t.Fatal("still running with a bad configuration")
			}
			var exit *exec.ExitError
			require.True(t, errors.As(p.err, &exit), "exit: %v\n%s", p.err, p.out)
			require.Equal(t, 1, exit.ExitCode())
			require.Contains(t, p.out.String(), "metrics: load configuration:")
		})
	}
}

// get returns the body of a GET, or "" when it fails.
func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
