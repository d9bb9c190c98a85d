package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

const (
	cliToken = "tok-cli-shop"
	// opsToken is allowed every source, as suppressions need.
	opsToken = "tok-ops"
)

type operateBundle struct {
	url   string
	store *store.Store
	ids   map[string]string
}

// setupOperate runs ingest over real PostgreSQL and Redis and stores a small known data set:
// names n1…n6, created a minute apart, n6 the newest.
func setupOperate(t *testing.T) *operateBundle {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.NoError(t, st.Migrate(ctx))
	redisURL, prefix := pulsetest.Redis(t)
	rdb, err := queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	logger := slog.New(slog.DiscardHandler)
	committer := ingest.NewCommitter(st, queue.New(rdb, queue.NewKeys(prefix), nil), logger, 100, 1)
	committer.Start()
	cfg := config.Ingest{Auth: "token", Tokens: config.Tokens{cliToken: {"https://shop.example.com/"}, "tok-other": {"urn:other"}, opsToken: {"*"}},
		MaxRequestBytes: 1 << 20, MaxBatch: 10, Retry: config.Retry{Schedule: []time.Duration{time.Second}}}
	srv := httptest.NewServer(ingest.NewHandler(cfg, st, committer, logger))
	t.Cleanup(func() { srv.Close(); committer.Stop() })

	b := &operateBundle{url: srv.URL, store: st, ids: map[string]string{}}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, r := range []struct {
		name, source string
		channel      notification.Channel
		status       notification.Status
		lastError    string
	}{
		{"n1", "https://shop.example.com/orders", notification.Webhook, notification.Failed, "HTTP 503 from receiver"},
		{"n2", "https://shop.example.com/orders", notification.Email, notification.Delivered, ""},
		{"n3", "https://shop.example.com/orders", notification.Webhook, notification.Failed, "dial tcp: connection refused"},
		{"n4", "https://shop.example.com/orders", notification.SMS, notification.Queued, ""},
		{"n5", "urn:other", notification.Webhook, notification.Failed, "HTTP 503 from receiver"},
		{"n6", "https://shop.example.com/orders", notification.Webhook, notification.Expired, ""},
	} {
		to := map[notification.Channel]string{notification.Webhook: "https://hooks.example.com/in", notification.Email: "a@example.com", notification.SMS: "+15550100"}[r.channel]
		acc, err := st.Insert(ctx, []store.NewNotification{{Source: r.source, EventID: r.name, MaxAttempts: 3,
			Request: notification.Request{Channel: r.channel, To: to, Priority: notification.High}}})
		require.NoError(t, err)
		b.ids[r.name] = acc[0].ID
		_, err = st.Pool().Exec(ctx, `update notifications set status = $2::text, last_error = $3, created_at = $4::timestamptz,
			attempts = case when $2::text = 'queued' then 0 else 3 end where id = $1`,
			acc[0].ID, string(r.status), r.lastError, base.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
	}
	return b
}

// pulse runs one operator command against the bundle's ingest and returns its exit code and
// output.
func (b *operateBundle) pulse(t *testing.T, command string, args ...string) (int, string, string) {
	t.Helper()
	return b.pulseAs(t, cliToken, command, args...)
}

// pulseAs runs one operator command ("list", "retry", "cancel", "suppressions list" …) with
// token.
func (b *operateBundle) pulseAs(t *testing.T, token, command string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--url", b.url, "--token", token}, args...)
	var err error
	switch sub, ok := strings.CutPrefix(command, "suppressions "); {
	case ok:
		err = suppressionsCmd(context.Background(), append([]string{sub}, args...), &stdout)
	case command == "list":
		err = listCmd(context.Background(), args, &stdout, &stderr)
	default:
		err = bulkCmd(context.Background(), command, args, &stdout, &stderr, false)
	}
	if err != nil {
		stderr.WriteString(err.Error())
	}
	return exitCode(err), stdout.String(), stderr.String()
}

func TestListCommand(t *testing.T) {
	t.Parallel()
	b := setupOperate(t)
	tests := map[string]struct {
		args []string
		want []string
	}{
		"everything the token sees": {nil, []string{"n6", "n4", "n3", "n2", "n1"}},
		"status":                    {[]string{"--status", "failed"}, []string{"n3", "n1"}},
		"filter flag":               {[]string{"--filter", "status=failed", "--filter", "error=503"}, []string{"n1"}},
		"channel":                   {[]string{"--channel", "webhook"}, []string{"n6", "n3", "n1"}},
		"since":                     {[]string{"--since", "2026-03-01T12:03:00Z"}, []string{"n6", "n4"}},
		"until":                     {[]string{"--until", "2026-03-01T12:01:00Z"}, []string{"n1"}},
		"error":                     {[]string{"--error", "refused"}, []string{"n3"}},
		"pages followed with --all": {[]string{"--limit", "2", "--all"}, []string{"n6", "n4", "n3", "n2", "n1"}},
		"other prefix is invisible": {[]string{"--source", "urn:other"}, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := b.pulse(t, "list", append([]string{"-o", "json"}, tt.args...)...)
			var page ingest.Page
			require.NoError(t, json.Unmarshal([]byte(out), &page), out)
			var got []string
			for _, n := range page.Notifications {
				got = append(got, b.name(n.ID))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("json output (-want +got):\n%s", diff)
			}
			if len(tt.want) == 0 {
				require.Equal(t, exitNoMatches, code, errOut)
			} else {
				require.Equal(t, exitOK, code, errOut)
			}

			_, table, _ := b.pulse(t, "list", tt.args...)
			lines := strings.Split(strings.TrimSpace(table), "\n")
			require.Regexp(t, `^ID\s+CREATED\s+STATUS\s+CHANNEL\s+PRIORITY\s+ATTEMPTS\s+SOURCE\s+LAST ERROR$`, lines[0])
			got = nil
			for _, l := range lines[1:] {
				got = append(got, b.name(strings.Fields(l)[0]))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("table output (-want +got):\n%s", diff)
			}
		})
	}

	// One page, and the cursor that continues it.
	code, table, errOut := b.pulse(t, "list", "--limit", "2")
	require.Equal(t, exitOK, code)
	require.Len(t, strings.Split(strings.TrimSpace(table), "\n"), 3)
	require.Contains(t, table, b.ids["n6"]+"  2026-03-01T12:05:00Z  expired")
	require.Contains(t, errOut, "more: pulse list --cursor ")
}

func (b *operateBundle) name(id string) string {
	for n, i := range b.ids {
		if i == id {
			return n
		}
	}
	return "unknown " + id
}

func TestRetryAndCancelCommands(t *testing.T) {
	t.Parallel()
	b := setupOperate(t)
	status := func(name string) notification.Status {
		n, err := b.store.Get(context.Background(), b.ids[name])
		require.NoError(t, err)
		return n.Status
	}

	code, out, errOut := b.pulse(t, "retry", "--status", "failed", "--dry-run")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "dry run: 2 notifications would be replayed\n", out)
	require.Equal(t, notification.Failed, status("n1"), "a dry run changes nothing")

	code, out, errOut = b.pulse(t, "retry", "--channel", "webhook", "--batch", "1", "--reason", "receiver back", "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	var a ingest.BulkAnswer
	require.NoError(t, json.Unmarshal([]byte(out), &a))
	require.Equal(t, 3, a.Moved, "n6, n3 and n1, one a request")
	require.ElementsMatch(t, []string{b.ids["n1"], b.ids["n3"], b.ids["n6"]}, a.IDs)
	require.Equal(t, notification.Failed, status("n5"), "another token's notification does not move")

	code, out, _ = b.pulse(t, "retry", "--channel", "webhook")
	require.Equal(t, exitNoMatches, code, "nothing is left to replay: %s", out)

	code, out, errOut = b.pulse(t, "cancel", b.ids["n4"], b.ids["n2"])
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, fmt.Sprintf("cancelled 1 notifications\n%s\n", b.ids["n4"]), out)
	require.Equal(t, notification.Cancelled, status("n4"))
	require.Equal(t, notification.Delivered, status("n2"))

	tests := map[string]struct {
		command string
		args    []string
		code    int
		stderr  string
	}{
		"no ids nor filter":     {"retry", nil, exitUsage, "give notification ids or at least one filter"},
		"ids and filter":        {"cancel", []string{"--status", "queued", b.ids["n1"]}, exitUsage, "not both"},
		"filter ingest refuses": {"retry", []string{"--status", "done"}, exitUsage, "status: invalid value: done"},
		"bad output":            {"retry", []string{"-o", "yaml", "--status", "failed"}, exitUsage, "want table or json"},
		"help":                  {"cancel", []string{"-h"}, exitOK, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := b.pulse(t, tt.command, tt.args...)
			require.Equal(t, tt.code, code, errOut)
			require.Contains(t, errOut, tt.stderr)
			if name == "help" {
				require.Contains(t, out, "PULSE_URL")
				require.Contains(t, out, "PULSE_TOKEN")
				require.Contains(t, out, "exit codes:")
			}
		})
	}
}

// TestUnreachableIngest: the message names where it tried without credentials or tokens.
func TestUnreachableIngest(t *testing.T) {
	t.Parallel()
	flags := []string{"--url", "http://admin:hunter2@127.0.0.1:1/?k=v", "--token", "s3cret"}
	for name, run := range map[string]func() error{
		"list": func() error { return listCmd(context.Background(), flags, io.Discard, io.Discard) },
		"suppressions list": func() error {
			return suppressionsCmd(context.Background(), append([]string{"list"}, flags...), io.Discard)
		},
		"suppressions remove": func() error {
			return suppressionsCmd(context.Background(), append([]string{"remove"}, append(flags, "sms", "+15550100")...), io.Discard)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run()
			require.Error(t, err)
			require.Equal(t, exitError, exitCode(err))
			require.Contains(t, err.Error(), "cannot reach ingest at http://127.0.0.1:1/ (PULSE_URL)")
			require.NotContains(t, err.Error(), "hunter2")
			require.NotContains(t, err.Error(), "admin")
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}
