package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
)

// pulseBinary builds this command once per test binary, for the tests that need what only a
// process shows: its exit code and its output.
var pulseBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "pulse-cli-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pulse")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// pulse runs the binary with args and env (and no PULSE_ variable of the test's environment),
// and returns its exit code and its output, stdout and stderr together.
func pulse(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	bin, err := pulseBinary()
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(environ(), env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		return exit.ExitCode(), string(out)
	}
	return 0, string(out)
}

// environ is the test's environment without Pulse's variables.
func environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULSE_") {
			out = append(out, kv)
		}
	}
	return out
}

// TestHelp checks that every command's -h succeeds and says what the command needs: its
// arguments and every environment variable it reads.
func TestHelp(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"pulse -h":            {[]string{"-h"}, []string{"dev", "migrate", "send", "get ID", "inspect"}},
		"pulse help":          {[]string{"help"}, []string{"dev", "migrate", "send", "get ID", "inspect"}},
		"dev":                 {[]string{"dev", "-h"}, []string{"usage: pulse dev", "PULSE_DEV_INGEST_PORT", "PULSE_DEV_MANIFESTS", "PULSE_DATABASE_URL", "PULSE_REDIS_URL", "PULSE_WEBHOOK_SECRET", "PULSE_INGEST_AUTH", "PULSE_CRON_BUDGET", "PULSE_STREAM_CONCURRENCY", "(a fixed development value)"}},
		"migrate":             {[]string{"migrate", "-h"}, []string{"usage: pulse migrate", "PULSE_DATABASE_URL", "default postgres://127.0.0.1:5432/pulse"}},
		"send":                {[]string{"send", "-h"}, []string{"usage: pulse send [flags]", "-to", "-data", "-id", "PULSE_URL", "PULSE_TOKEN"}},
		"get":                 {[]string{"get", "-h"}, []string{"usage: pulse get [flags] ID", "Arguments:", "ID ", "PULSE_URL", "PULSE_TOKEN"}},
		"deadletter list":     {[]string{"deadletter", "list", "-h"}, []string{"usage: pulse deadletter list [flags]", "-o", "-limit", "PULSE_DATABASE_URL", "PULSE_REDIS_PREFIX"}},
		"deadletter redrive":  {[]string{"deadletter", "redrive", "-h"}, []string{"usage: pulse deadletter redrive [flags] ID... | --all", "-all", "PULSE_REDIS_URL"}},
		"suppressions list":   {[]string{"suppressions", "list", "-h"}, []string{"usage: pulse suppressions list [flags]", "-channel", "-address", "-limit", "-o", "PULSE_URL", "PULSE_TOKEN", "Exit codes:"}},
		"suppressions remove": {[]string{"suppressions", "remove", "-h"}, []string{"usage: pulse suppressions remove [flags] CHANNEL ADDRESS", "Arguments:", "CHANNEL", "PULSE_TOKEN"}},
		"inspect":             {[]string{"inspect", "-h"}, []string{"usage: pulse inspect", "PULSE_DATABASE_URL", "PULSE_REDIS_URL", "PULSE_REDIS_PREFIX", "default redis://127.0.0.1:6379/0"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out := pulse(t, nil, tc.args...)
			require.Equal(t, 0, code, "%s", out)
			for _, want := range tc.want {
				require.Contains(t, out, want)
			}
			require.NotContains(t, out, "whsec_", "help never prints a secret")
			require.NotContains(t, out, "help requested")
		})
	}
}

// TestUsageErrors checks that a command used wrongly fails, and says how to use it.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"no command":      {nil, 2, "usage: pulse <command>"},
		"unknown command": {[]string{"deploy"}, 2, `unknown command "deploy"`},
		"get without ID":  {[]string{"get"}, 2, "usage: pulse get [flags] ID"},
		"unknown flag":    {[]string{"inspect", "-verbose"}, 2, "usage: pulse inspect"},
		"extra argument":  {[]string{"inspect", "now"}, 2, "inspect takes no arguments"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out := pulse(t, nil, tc.args...)
			require.Equal(t, tc.code, code, "%s", out)
			require.Contains(t, out, tc.want)
		})
	}
}

// TestDevFailsFast checks that pulse dev refuses a wrong setting or a datastore that does not
// answer at once, with one line naming it, no secret in it, and before saying it runs.
func TestDevFailsFast(t *testing.T) {
	t.Parallel()
	redisURL, prefix := pulsetest.Redis(t)
	db := "PULSE_DATABASE_URL=" + pulsetest.DatabaseURL(t)
	redis := []string{"PULSE_REDIS_URL=" + redisURL, "PULSE_REDIS_PREFIX=" + prefix}
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"secret without whsec_": {append([]string{db, "PULSE_WEBHOOK_SECRET=hunter2"}, redis...), "PULSE_WEBHOOK_SECRET: secret 1 of 1 does not start with whsec_"},
		"secret not base64":     {append([]string{db, "PULSE_WEBHOOK_SECRET=whsec_hunter2!"}, redis...), "malformed webhook secret"},
		"bad duration":          {append([]string{db, "PULSE_HTTP_READ_TIMEOUT=soon"}, redis...), "PULSE_HTTP_READ_TIMEOUT"},
		"database down": {append([]string{"PULSE_DATABASE_URL=postgres://pulse:hunter2@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/pulse?sslmode=disable"}, redis...),
			"PostgreSQL (PULSE_DATABASE_URL) does not answer"},
		"redis down": {[]string{db, "PULSE_REDIS_URL=redis://:hunter2@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/0"},
			"Redis (PULSE_REDIS_URL) does not answer"},
		"database URL malformed": {append([]string{"PULSE_DATABASE_URL=postgres://pulse:hunter2@[::1/pulse"}, redis...), "PULSE_DATABASE_URL"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, out := pulse(t, append(tc.env, devPorts(t)...), "dev")
			require.Equal(t, 1, code, "%s", out)
			require.Less(t, time.Since(start), 30*time.Second, "it must not wait for what will not come")
			require.Equal(t, 1, strings.Count(out, "\n"), "one line:\n%s", out)
			require.Contains(t, out, tc.want)
			require.True(t, strings.HasPrefix(out, "pulse: "), "%s", out)
			require.NotContains(t, out, "hunter2", "a secret in the output")
			require.NotContains(t, out, "Pulse is running")
		})
	}
}

// TestDevStopsOnInterrupt runs pulse dev until it says it is running, checks that every
// function answers by then, and stops it with SIGINT as Ctrl-C does: it exits 0.
func TestDevStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	redisURL, prefix := pulsetest.Redis(t)
	bin, err := pulseBinary()
	require.NoError(t, err)
	env := append(environ(), "PULSE_DATABASE_URL="+pulsetest.DatabaseURL(t), "PULSE_REDIS_URL="+redisURL,
		"PULSE_REDIS_PREFIX="+prefix)
	ports := devPorts(t)
	cmd := exec.Command(bin, "dev")
	cmd.Env = append(env, ports...)
	var stderr pulsetest.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "no output; stderr:\n%s", stderr.String())
	require.Equal(t, "Pulse is running.", lines.Text(), "stderr:\n%s", stderr.String())
	// Running means ready: every function answers now, without waiting.
	for _, kv := range ports {
		name, port, _ := strings.Cut(kv, "=")
		function := strings.TrimSuffix(strings.TrimPrefix(name, "PULSE_DEV_"), "_PORT")
		if !slices.Contains([]string{"INGEST", "DELIVER_HIGH", "DELIVER_LOW", "CRON", "METRICS"}, function) {
			continue // a capture, not a function
		}
		resp, err := httpGet("http://127.0.0.1:" + port + "/readyz")
		require.NoError(t, err, name)
		require.Equal(t, 200, resp, name)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "pulse dev must exit 0 on Ctrl-C; stderr:\n%s", stderr.String())
}

// devPorts returns the environment that gives pulse dev free ports and this repository's
// manifests, wherever it runs.
func devPorts(t *testing.T) []string {
	t.Helper()
	manifests, err := filepath.Abs("../../config")
	require.NoError(t, err)
	env := []string{"PULSE_DEV_MANIFESTS=" + manifests}
	for _, name := range []string{"INGEST", "DELIVER_HIGH", "DELIVER_LOW", "CRON", "METRICS", "WEBHOOK", "SMTP", "SMS", "PUSH"} {
		env = append(env, "PULSE_DEV_"+name+"_PORT="+strconv.Itoa(pulsetest.FreePort(t)))
	}
	return env
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int { return pulsetest.FreePort(t) }

// httpGet returns the status code of a GET of url.
func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
