package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/push"
	"github.com/pulse-knative/pulse/pkg/channel/sms"
	"github.com/pulse-knative/pulse/pkg/config"
)

// accountURL returns the URL of the single "name=URL" entry of an accounts variable.
func accountURL(t *testing.T, variable string) string {
	t.Helper()
	name, raw, ok := strings.Cut(os.Getenv(variable), "=")
	require.True(t, ok, variable)
	require.Equal(t, "dev", name)
	return raw
}

// TestDevCapturesReceiveWhatProvidersSend: the account URLs `pulse dev` gives the deliver
// functions parse, and the SMS and push providers built from them deliver to the captures,
// token exchange included; the captures' magic recipients answer as Twilio and FCM do for
// numbers and tokens that must be suppressed.
func TestDevCapturesReceiveWhatProvidersSend(t *testing.T) {
	t.Setenv("PULSE_SMS_ACCOUNTS", "")
	t.Setenv("PULSE_PUSH_ACCOUNTS", "")
	os.Unsetenv("PULSE_SMS_ACCOUNTS")
	os.Unsetenv("PULSE_PUSH_ACCOUNTS")
	dev := config.Dev{SMSPort: pulsetest.FreePort(t), PushPort: pulsetest.FreePort(t)}
	captures, err := newDevCaptures(dev)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	captures.serve(gctx, g)
	t.Cleanup(func() {
		cancel()
		require.NoError(t, g.Wait())
		captures.close()
		_, err := os.Stat(captures.KeyFile)
		require.True(t, os.IsNotExist(err), "the generated key is removed")
	})
	for _, port := range []int{dev.SMSPort, dev.PushPort} {
		require.Eventually(t, func() bool {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				conn.Close()
			}
			return err == nil
		}, 10*time.Second, 10*time.Millisecond, "capture on port %d listening", port)
	}

	smsCfg, err := sms.ParseURL(accountURL(t, "PULSE_SMS_ACCOUNTS"))
	require.NoError(t, err)
	smsProvider, err := sms.New(smsCfg)
	require.NoError(t, err)
	pushCfg, err := push.ParseURL(accountURL(t, "PULSE_PUSH_ACCOUNTS"))
	require.NoError(t, err)
	pushProvider, err := push.New(pushCfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = smsProvider.Close(); _ = pushProvider.Close() })

	res := smsProvider.Send(ctx, channel.Message{NotificationID: "n1", Channel: "sms", To: "+15551234567", Body: "Your code is 1234"})
	require.Equal(t, channel.Delivered, res.Outcome, "%v", res.Err)
	got := captures.Twilio.Messages()
	require.Len(t, got, 1)
	require.Equal(t, res.ProviderMessageID, got[0].SID)
	require.Empty(t, cmp.Diff(capture.SMSMessage{SID: got[0].SID, AccountSID: capture.TwilioAccountSID, To: "+15551234567", From: capture.TwilioFrom,
		Body: "Your code is 1234"}, got[0], cmpopts.IgnoreFields(capture.SMSMessage{}, "Received")), "(-want +got)")

	for range 3 {
		res = pushProvider.Send(ctx, channel.Message{NotificationID: "n2", Channel: "push", To: "device-token-1", Subject: "Hello", Body: "From Pulse",
			Data: json.RawMessage(`{"data":{"order":"42"},"apns":{"headers":{"apns-priority":"10"}}}`)})
		require.Equal(t, channel.Delivered, res.Outcome, "%v", res.Err)
	}
	require.Equal(t, "projects/pulse-dev/messages/0:3", res.ProviderMessageID)
	require.Equal(t, 1, captures.FCM.Grants(), "one access token serves every send")
	require.Empty(t, cmp.Diff(capture.PushMessage{Name: "projects/pulse-dev/messages/0:1", Project: capture.FCMProject, Token: "device-token-1", Title: "Hello", Body: "From Pulse",
		Data: map[string]string{"order": "42"}, Overrides: []string{"apns"}}, captures.FCM.Messages()[0]), "(-want +got)")

	refused := map[string]struct {
		send func() channel.Result
		want channel.Result
	}{
		"invalid number": {
			send: func() channel.Result {
				return smsProvider.Send(ctx, channel.Message{To: capture.TwilioInvalidNumber, Body: "x"})
			},
			want: channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "21211", Undeliverable: true},
		},
		"unsubscribed number": {
			send: func() channel.Result {
				return smsProvider.Send(ctx, channel.Message{To: capture.TwilioUnsubscribed, Body: "x"})
			},
			want: channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "21610", Undeliverable: true},
		},
		"unregistered token": {
			send: func() channel.Result {
				return pushProvider.Send(ctx, channel.Message{To: capture.FCMUnregisteredPrefix + "-1", Body: "x"})
			},
			want: channel.Result{Outcome: channel.Permanent, StatusCode: 404, ErrorCode: "UNREGISTERED", Undeliverable: true},
		},
	}
	for name, tt := range refused {
		require.Empty(t, cmp.Diff(tt.want, tt.send(), cmpopts.IgnoreFields(channel.Result{}, "Err")), "%s (-want +got)", name)
	}
	require.Len(t, captures.Twilio.Messages(), 1)
	require.Len(t, captures.FCM.Messages(), 3)
}

// TestDevKeepsConfiguredAccounts: accounts set in the environment win over the captures.
func TestDevKeepsConfiguredAccounts(t *testing.T) {
	t.Setenv("PULSE_SMS_ACCOUNTS", "main=twilio://AC1:x@api.twilio.com?from=%2B1555")
	t.Setenv("PULSE_PUSH_ACCOUNTS", "main=fcm://?credentials_file=/k.json")
	captures, err := newDevCaptures(config.Dev{SMSPort: 1, PushPort: 2})
	require.NoError(t, err)
	t.Cleanup(captures.close)

	require.Equal(t, "main=twilio://AC1:x@api.twilio.com?from=%2B1555", os.Getenv("PULSE_SMS_ACCOUNTS"))
	require.Equal(t, "main=fcm://?credentials_file=/k.json", os.Getenv("PULSE_PUSH_ACCOUNTS"))
}
