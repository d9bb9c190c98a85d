package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
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
	cfg := config.Ingest{Auth: "token", Tokens: config.Tokens{cliToken: {"https://shop.example.com/"}, "tok-other": {"urn:other"}, opsToken: {"*"}},
		MaxRequestBytes: 1 << 20, MaxBatch: 10, Retry: config.Retry{Schedule: []time.Duration{time.Second}}}
	srv := testfactory.Ingest(t, cfg, testfactory.IngestOpts{Committers: 1})
	st := srv.Store

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

// suppress stores the suppressions a provider would have caused, a minute apart, the last
// the newest.
func (b *operateBundle) suppress(t *testing.T, sups ...store.Suppression) {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, s := range sups {
		require.NoError(t, b.store.Suppress(ctx, s))
		_, err := b.store.Pool().Exec(ctx, `update suppressions set created_at = $3 where channel = $1 and address = $2`,
			s.Channel, s.Address.Address, base.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
	}
}

func (b *operateBundle) suppressed(t *testing.T) []string {
	t.Helper()
	list, err := b.store.Suppressions(context.Background(), "", "", 100)
	require.NoError(t, err)
	var out []string
	for _, s := range list {
		out = append(out, s.Channel+" "+s.Address.Address)
	}
	return out
}

func TestSuppressionsCommand(t *testing.T) {
	t.Parallel()
	b := setupOperate(t)
	b.suppress(t,
		store.Suppression{Address: store.Address{Channel: "email", Address: "gone@example.com"}, ErrorCode: "5.1.1",
			Reason: "550 5.1.1 <gone@example.com>:\n no such user", NotificationID: b.ids["n2"]},
		store.Suppression{Address: store.Address{Channel: "sms", Address: "+15005550004"}, ErrorCode: "21610",
			Reason: "Twilio 21610: Attempt to send to unsubscribed recipient", NotificationID: b.ids["n4"]},
		store.Suppression{Address: store.Address{Channel: "push", Address: "unregistered-1"}, ErrorCode: "UNREGISTERED",
			Reason: "FCM UNREGISTERED: Requested entity was not found."},
	)

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		tests := map[string]struct {
			args []string
			want []string
		}{
			"everything, newest first": {nil, []string{"push unregistered-1", "sms +15005550004", "email gone@example.com"}},
			"channel":                  {[]string{"--channel", "sms"}, []string{"sms +15005550004"}},
			"address":                  {[]string{"--channel", "email", "--address", "gone@example.com"}, []string{"email gone@example.com"}},
			"limit":                    {[]string{"--limit", "1"}, []string{"push unregistered-1"}},
			"nothing suppressed":       {[]string{"--channel", "email", "--address", "here@example.com"}, nil},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				wantCode := exitOK
				if len(tt.want) == 0 {
					wantCode = exitNoMatches
				}
				code, out, errOut := b.pulseAs(t, opsToken, "suppressions list", append([]string{"-o", "json"}, tt.args...)...)
				require.Equal(t, wantCode, code, errOut)
				var answer ingest.Suppressions
				require.NoError(t, json.Unmarshal([]byte(out), &answer), out)
				var got []string
				for _, s := range answer.Suppressions {
					got = append(got, s.Channel+" "+s.Address.Address)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("json output (-want +got):\n%s", diff)
				}

				code, table, errOut := b.pulseAs(t, opsToken, "suppressions list", tt.args...)
				require.Equal(t, wantCode, code, errOut)
				lines := strings.Split(strings.TrimSpace(table), "\n")
				require.Regexp(t, `^CHANNEL\s+ADDRESS\s+SUPPRESSED AT\s+CODE\s+NOTIFICATION\s+REASON$`, lines[0])
				got = nil
				for _, l := range lines[1:] {
					f := strings.Fields(l)
					got = append(got, f[0]+" "+f[1])
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("table output (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("table row", func(t *testing.T) {
		t.Parallel()
		code, table, errOut := b.pulseAs(t, opsToken, "suppressions list", "--channel", "email")
		require.Equal(t, exitOK, code, errOut)
		require.Regexp(t, `\nemail\s+gone@example\.com\s+2026-03-01T12:00:00Z\s+5\.1\.1\s+`+b.ids["n2"]+`\s+550 5\.1\.1 <gone@example\.com>: no such user\n$`, table,
			"the reason is on one line")
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		t.Cleanup(func() { require.Len(t, b.suppressed(t), 3, "nothing was removed") })
		tests := map[string]struct {
			token, command string
			args           []string
			code           int
			stderr         string
		}{
			"address without channel": {opsToken, "suppressions list", []string{"--address", "a@example.com"}, exitUsage, "channel"},
			"unknown channel":         {opsToken, "suppressions list", []string{"--channel", "fax"}, exitUsage, "channel: invalid value: fax"},
			"bad output":              {opsToken, "suppressions list", []string{"-o", "yaml"}, exitUsage, "want table or json"},
			"unknown flag":            {opsToken, "suppressions list", []string{"--status", "failed"}, exitUsage, "flag provided but not defined: -status"},
			"remove without address":  {opsToken, "suppressions remove", []string{"email"}, exitUsage, "usage: pulse suppressions remove"},
			"remove, unknown channel": {opsToken, "suppressions remove", []string{"fax", "+15550100"}, exitUsage, "channel: invalid value: fax"},
			"not suppressed":          {opsToken, "suppressions remove", []string{"email", "here@example.com"}, exitNoMatches, "email here@example.com is not suppressed"},
			"token for some sources":  {cliToken, "suppressions list", nil, exitError, "a token allowed every source (*)"},
			"remove, token for some":  {cliToken, "suppressions remove", []string{"email", "gone@example.com"}, exitError, "a token allowed every source (*)"},
			"no token":                {"", "suppressions list", nil, exitError, "ingest refused the token (PULSE_TOKEN)"},
			"unknown subcommand":      {opsToken, "suppressions show", nil, exitUsage, `unknown suppressions command "show"`},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				code, out, errOut := b.pulseAs(t, tt.token, tt.command, tt.args...)
				require.Equal(t, tt.code, code, "stdout %s, stderr %s", out, errOut)
				require.Contains(t, errOut, tt.stderr)
			})
		}
	})

	t.Run("remove", func(t *testing.T) {
		t.Parallel()
		b := setupOperate(t) // its own: it changes what it reads
		b.suppress(t,
			store.Suppression{Address: store.Address{Channel: "email", Address: "gone@example.com"}, ErrorCode: "5.1.1", Reason: "no such user"},
			store.Suppression{Address: store.Address{Channel: "webhook", Address: "https://hooks.example.com/in?a=1"}, Reason: "gone"},
			store.Suppression{Address: store.Address{Channel: "sms", Address: "+15005550004"}, ErrorCode: "21610", Reason: "STOP"},
		)
		code, out, errOut := b.pulseAs(t, opsToken, "suppressions remove", "email", "gone@example.com")
		require.Equal(t, exitOK, code, errOut)
		require.Equal(t, "removed the email suppression of gone@example.com: notifications to it are sent again\n", out)
		require.Equal(t, []string{"sms +15005550004", "webhook https://hooks.example.com/in?a=1"}, b.suppressed(t))

		code, out, errOut = b.pulseAs(t, opsToken, "suppressions remove", "-o", "json", "webhook", "https://hooks.example.com/in?a=1")
		require.Equal(t, exitOK, code, errOut)
		var answer ingest.SuppressionRemoved
		require.NoError(t, json.Unmarshal([]byte(out), &answer), out)
		require.Equal(t, ingest.SuppressionRemoved{Channel: "webhook", Address: "https://hooks.example.com/in?a=1", Removed: true}, answer,
			"an address with '/', '?' and ':' reaches ingest whole")
		require.Equal(t, []string{"sms +15005550004"}, b.suppressed(t))

		code, _, errOut = b.pulseAs(t, opsToken, "suppressions remove", "email", "gone@example.com")
		require.Equal(t, exitNoMatches, code, "removing twice finds nothing: %s", errOut)
		require.Contains(t, errOut, "email gone@example.com is not suppressed")
	})
}
