package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/store"
)

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
