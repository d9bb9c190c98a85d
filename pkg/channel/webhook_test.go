package channel_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/internal/channeltest"
)

// Strings that must never show up in an error: a message body, a response body and a token
// carried in a webhook URL.
const (
	secretBody     = "SECRET-MESSAGE-BODY"
	secretResponse = "SECRET-RESPONSE-BODY"
	secretToken    = "SECRET-URL-TOKEN"
)

// received is one request as a receiver saw it.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

type testBundle struct {
	secret string
	now    time.Time
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{
		secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		now:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// webhook builds a provider from cfg, filling in the bundle's secret and clock and allowing
// loopback destinations unless cfg says otherwise through guarded.
func (b *testBundle) webhook(t *testing.T, cfg channel.WebhookConfig, guarded bool) *channel.Webhook {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = b.secret
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return b.now }
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	cfg.AllowPrivate = !guarded
	w, err := channel.NewWebhook(cfg)
	require.NoError(t, err)
	t.Cleanup(w.CloseIdleConnections)
	return w
}

// receiver starts an httptest server that records every request and answers with respond.
func receiver(t *testing.T, respond http.HandlerFunc) (*httptest.Server, <-chan received, *atomic.Int32) {
	t.Helper()
	got := make(chan received, 16)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		got <- received{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: body}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got, &calls
}

// answer answers with status and header, and a body that must never reach an error.
func answer(status int, header map[string]string) http.HandlerFunc {
	return channeltest.Answer(status, "", header, secretResponse)
}

// verifyStandardWebhook checks a signature the way the Standard Webhooks spec describes it,
// independently of the package's signing code: HMAC-SHA256 keyed with the base64-decoded part
// of the secret after "whsec_", over "id.timestamp.body", base64 encoded after "v1,", one of
// the space-separated signatures in webhook-signature.
func verifyStandardWebhook(t *testing.T, secret string, h http.Header, body []byte) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.Contains(t, strings.Split(h.Get("webhook-signature"), " "), want)
}

func requireNoLeak(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{secretBody, secretResponse, secretToken} {
		require.NotContains(t, err.Error(), s)
	}
}

func TestWebhookSendsSignedPayload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv, got, _ := receiver(t, answer(http.StatusNoContent, nil))
	w := b.webhook(t, channel.WebhookConfig{UserAgent: "pulse-test"}, false)

	res := w.Send(context.Background(), channel.Message{
		NotificationID: "ntf_01",
		Channel:        "webhook",
		To:             srv.URL + "/hooks/orders?token=" + secretToken,
		Subject:        "Order shipped",
		Body:           secretBody,
		HTML:           "<p>not sent</p>",
		Data:           json.RawMessage(`{"order":42,"items":["a","b"]}`),
		Metadata:       map[string]string{"tenant": "acme"},
		Attempt:        1,
	})

	require.Empty(t, cmp.Diff(channel.Result{Outcome: channel.Delivered, StatusCode: http.StatusNoContent}, res,
		cmpopts.EquateErrors()), "(-want +got)")
	r := <-got
	require.Equal(t, http.MethodPost, r.method)
	require.Equal(t, "/hooks/orders?token="+secretToken, r.path)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "pulse-test", r.header.Get("User-Agent"))
	require.Equal(t, "ntf_01", r.header.Get("webhook-id"))
	require.Equal(t, "1772366400", r.header.Get("webhook-timestamp"))
	require.True(t, strings.HasPrefix(r.header.Get("webhook-signature"), "v1,"))

	var payload map[string]any
	require.NoError(t, json.Unmarshal(r.body, &payload))
	want := map[string]any{
		"type":      "dev.pulse.notification",
		"id":        "ntf_01",
		"timestamp": "2026-03-01T12:00:00Z",
		"data":      map[string]any{"order": float64(42), "items": []any{"a", "b"}},
		"subject":   "Order shipped",
		"body":      secretBody,
		"metadata":  map[string]any{"tenant": "acme"},
	}
	require.Empty(t, cmp.Diff(want, payload), "(-want +got)")

	verifyStandardWebhook(t, b.secret, r.header, r.body)
	require.NoError(t, channel.VerifyWebhook(b.secret, r.header, r.body, b.now, 0))
}

func TestWebhookOmitsEmptyFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv, got, _ := receiver(t, answer(http.StatusOK, nil))
	w := b.webhook(t, channel.WebhookConfig{}, false)

	res := w.Send(context.Background(), channel.Message{NotificationID: "ntf_02", To: srv.URL, Data: json.RawMessage("null")})

	require.Equal(t, channel.Delivered, res.Outcome)
	r := <-got
	require.JSONEq(t, `{"type":"dev.pulse.notification","id":"ntf_02","timestamp":"2026-03-01T12:00:00Z"}`, string(r.body))
	verifyStandardWebhook(t, b.secret, r.header, r.body)
}

func TestWebhookRetryKeepsTheID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv, got, _ := receiver(t, answer(http.StatusOK, nil))
	var clock atomic.Int64
	clock.Store(b.now.Unix())
	w := b.webhook(t, channel.WebhookConfig{Now: func() time.Time { return time.Unix(clock.Load(), 0) }}, false)

	m := channel.Message{NotificationID: "ntf_03", To: srv.URL, Body: "hello", Attempt: 1}
	require.Equal(t, channel.Delivered, w.Send(context.Background(), m).Outcome)
	clock.Add(30)
	m.Attempt = 2
	require.Equal(t, channel.Delivered, w.Send(context.Background(), m).Outcome)

	first, second := <-got, <-got
	require.Equal(t, "ntf_03", first.header.Get("webhook-id"))
	require.Equal(t, "ntf_03", second.header.Get("webhook-id"))
	require.NotEqual(t, first.header.Get("webhook-timestamp"), second.header.Get("webhook-timestamp"))
	verifyStandardWebhook(t, b.secret, first.header, first.body)
	verifyStandardWebhook(t, b.secret, second.header, second.body)
}

func TestWebhookReusesConnections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(answer(http.StatusOK, nil))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	w := b.webhook(t, channel.WebhookConfig{}, false)

	for range 5 {
		require.Equal(t, channel.Delivered, w.Send(context.Background(), channel.Message{NotificationID: "ntf_04", To: srv.URL}).Outcome)
	}
	require.Equal(t, int32(1), conns.Load())
}

func TestWebhookClassifiesAnswers(t *testing.T) {
	t.Parallel()

	now := setup(t).now
	tests := map[string]struct {
		status         int
		header         map[string]string
		want           channel.Outcome
		wantRetryAfter time.Duration
	}{
		"200": {status: http.StatusOK, want: channel.Delivered},
		"202": {status: http.StatusAccepted, want: channel.Delivered},
		"503": {status: http.StatusServiceUnavailable, want: channel.Transient},
		"500": {status: http.StatusInternalServerError, want: channel.Transient},
		"408": {status: http.StatusRequestTimeout, want: channel.Transient},
		"429 with Retry-After seconds": {status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "7"},
			want: channel.Transient, wantRetryAfter: 7 * time.Second},
		"503 with Retry-After date": {status: http.StatusServiceUnavailable,
			header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)},
			want:   channel.Transient, wantRetryAfter: 90 * time.Second},
		"429 with a malformed Retry-After": {status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "soon"},
			want: channel.Transient},
		"400": {status: http.StatusBadRequest, want: channel.Permanent},
		"404": {status: http.StatusNotFound, want: channel.Permanent},
		"410": {status: http.StatusGone, want: channel.Permanent},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			srv, _, _ := receiver(t, answer(tt.status, tt.header))
			w := b.webhook(t, channel.WebhookConfig{}, false)

			got := w.Send(context.Background(), channel.Message{NotificationID: "ntf_05", To: srv.URL, Body: secretBody})

			want := channel.Result{Outcome: tt.want, StatusCode: tt.status, RetryAfter: tt.wantRetryAfter}
			require.Empty(t, cmp.Diff(want, got, cmpopts.IgnoreFields(channel.Result{}, "Err")), "(-want +got)")
			if tt.want == channel.Delivered {
				require.NoError(t, got.Err)
			} else {
				require.ErrorContains(t, got.Err, "receiver answered "+strconv.Itoa(tt.status))
			}
			requireNoLeak(t, got.Err)
		})
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	target, _, targetCalls := receiver(t, answer(http.StatusOK, nil))
	origin, _, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	})
	w := b.webhook(t, channel.WebhookConfig{}, false)

	got := w.Send(context.Background(), channel.Message{NotificationID: "ntf_06", To: origin.URL})

	require.Equal(t, channel.Permanent, got.Outcome)
	require.Equal(t, http.StatusFound, got.StatusCode)
	require.ErrorContains(t, got.Err, "redirects are not followed")
	require.NotContains(t, got.Err.Error(), target.URL)
	require.Zero(t, targetCalls.Load())
}

func TestWebhookTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	srv, _, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for handlers
	w := b.webhook(t, channel.WebhookConfig{Timeout: 100 * time.Millisecond}, false)

	got := w.Send(context.Background(), channel.Message{NotificationID: "ntf_07", To: srv.URL})

	require.Equal(t, channel.Transient, got.Outcome)
	require.Zero(t, got.StatusCode)
	require.ErrorIs(t, got.Err, context.DeadlineExceeded)
	require.ErrorContains(t, got.Err, "no answer within 100ms")
}

func TestWebhookCancelledContextIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv, _, _ := receiver(t, answer(http.StatusOK, nil))
	w := b.webhook(t, channel.WebhookConfig{}, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	got := w.Send(ctx, channel.Message{NotificationID: "ntf_08", To: srv.URL})

	require.Equal(t, channel.Transient, got.Outcome)
	require.ErrorIs(t, got.Err, context.Canceled)
}

func TestWebhookConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := pulsetest.FreeAddr(t)
	w := b.webhook(t, channel.WebhookConfig{}, false)

	got := w.Send(context.Background(), channel.Message{
		NotificationID: "ntf_09",
		To:             "http://" + addr + "/hook?token=" + secretToken,
		Body:           secretBody,
	})

	require.Equal(t, channel.Transient, got.Outcome)
	require.Zero(t, got.StatusCode)
	require.ErrorContains(t, got.Err, "connection refused")
	requireNoLeak(t, got.Err)
}

func TestWebhookRefusesPrivateDestinations(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		host    func(srv *httptest.Server) string
		wantMsg string // "" means only check the error is a refusal
	}{
		"loopback address": {
			host: func(srv *httptest.Server) string { return srv.Listener.Addr().String() },
			wantMsg: "send webhook: webhook destination 127.0.0.1 is a loopback address; " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"name resolving to loopback": {
			host: func(srv *httptest.Server) string {
				_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
				return "localhost:" + port
			},
		},
		"IPv4-mapped IPv6 loopback": {
			host: func(srv *httptest.Server) string {
				_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
				return "[::ffff:127.0.0.1]:" + port
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			srv, _, calls := receiver(t, answer(http.StatusOK, nil))
			w := b.webhook(t, channel.WebhookConfig{}, true)

			got := w.Send(context.Background(), channel.Message{NotificationID: "ntf_10", To: "http://" + tt.host(srv) + "/hook"})

			require.Equal(t, channel.Permanent, got.Outcome)
			require.Zero(t, got.StatusCode)
			require.ErrorIs(t, got.Err, channel.ErrPrivateDestination)
			if tt.wantMsg != "" {
				require.EqualError(t, got.Err, tt.wantMsg)
			}
			require.Zero(t, calls.Load(), "the receiver must never be called")
		})
	}
}

func TestWebhookRejectsUnusableMessages(t *testing.T) {
	t.Parallel()

	// None of these may reach the network, so To needs no server.
	tests := map[string]channel.Message{
		"ftp url":            {NotificationID: "n", To: "ftp://" + secretToken + ".example.com/hook"},
		"no scheme":          {NotificationID: "n", To: secretToken + ".example.com/hook"},
		"no host":            {NotificationID: "n", To: "https:///hook?token=" + secretToken},
		"unparseable url":    {NotificationID: "n", To: "http://[::1/hook?token=" + secretToken},
		"control characters": {NotificationID: "n", To: "http://example.com/\x7f" + secretToken},
		"empty url":          {NotificationID: "n"},
		"data not JSON":      {NotificationID: "n", To: "http://example.com/hook", Data: json.RawMessage(`{"x":` + secretBody)},
		"no notification id": {To: "http://example.com/hook"},
		"id breaks a header": {NotificationID: "n\r\nX-Injected: 1", To: "http://example.com/hook"},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := setup(t).webhook(t, channel.WebhookConfig{}, true)

			got := w.Send(context.Background(), m)

			require.Equal(t, channel.Permanent, got.Outcome)
			require.Zero(t, got.StatusCode)
			require.Error(t, got.Err)
			requireNoLeak(t, got.Err)
		})
	}
}

// TestWebhookSignsWithEverySecret: during a rotation both the old and the new secret sign,
// and a receiver holding either verifies the webhook.
func TestWebhookSignsWithEverySecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the-new-signing-key-0123456789"))
	srv, got, _ := receiver(t, answer(http.StatusOK, nil))
	w := b.webhook(t, channel.WebhookConfig{Secret: b.secret + " " + newSecret}, false)
	res := w.Send(context.Background(), channel.Message{NotificationID: "n-1", To: srv.URL, Body: "hi"})
	require.Equal(t, channel.Delivered, res.Outcome, res.Err)
	r := <-got
	sigs := strings.Split(r.header.Get("webhook-signature"), " ")
	require.Len(t, sigs, 2)
	for _, secret := range []string{b.secret, newSecret} {
		verifyStandardWebhook(t, secret, r.header, r.body)
		require.NoError(t, channel.VerifyWebhook(secret, r.header, r.body, b.now, 0))
	}

	// A bad second secret is named by position, never quoted.
	_, err := channel.NewWebhook(channel.WebhookConfig{Secret: b.secret + ",whsec_not-base64!"})
	require.ErrorIs(t, err, channel.ErrWebhookSecret)
	require.ErrorContains(t, err, "secret 2 of 2")
	require.NotContains(t, err.Error(), "not-base64")
}
