package sms_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/internal/channeltest"
	"github.com/pulse-knative/pulse/pkg/channel/sms"
)

// Strings that must never appear in an error: a credential and a message body.
const (
	secretToken = "SECRET-AUTH-TOKEN"
	secretBody  = "SECRET-MESSAGE-BODY"
	accountSID  = "AC00000000000000000000000000000001"
)

// request is one call to the Messages API as the test server saw it.
type request struct {
	method, path, contentType, accept string
	user, password                    string
	basicAuth                         bool
	form                              url.Values
}

type testBundle struct {
	now    time.Time
	server *httptest.Server
	got    chan request
	calls  *atomic.Int32
}

// setup starts a Twilio-shaped server that records each request and answers with respond.
func setup(t *testing.T, respond http.HandlerFunc) *testBundle {
	t.Helper()
	b := &testBundle{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), got: make(chan request, 16), calls: new(atomic.Int32)}
	b.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		user, password, ok := r.BasicAuth()
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		form, err := url.ParseQuery(string(body))
		require.NoError(t, err)
		b.got <- request{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"),
			accept: r.Header.Get("Accept"), user: user, password: password, basicAuth: ok, form: form}
		respond(w, r)
	}))
	t.Cleanup(b.server.Close)
	return b
}

// provider builds a provider for the account URL raw, its base URL pointed at the server.
func (b *testBundle) provider(t *testing.T, raw string) *sms.Provider {
	t.Helper()
	return channeltest.Provider(t, sms.ParseURL, sms.New, raw+"&base_url="+url.QueryEscape(b.server.URL), b.now)
}

// answer answers as Twilio does, in JSON.
func answer(status int, header map[string]string, body string) http.HandlerFunc {
	return channeltest.Answer(status, "application/json", header, body)
}

const created = `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+15551234567","body":"` + secretBody + `"}`

func TestSendPostsTheMessage(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		url      string
		wantUser string
		wantPath string
		wantForm url.Values
	}{
		"account SID and auth token, from a number": {
			url:      "twilio://" + accountSID + ":" + secretToken + "@api.twilio.com?from=%2B15550001111",
			wantUser: accountSID,
			wantPath: "/2010-04-01/Accounts/" + accountSID + "/Messages.json",
			wantForm: url.Values{"To": {"+15551234567"}, "From": {"+15550001111"}, "Body": {secretBody}},
		},
		"messaging service with a status callback": {
			url: "twilio://" + accountSID + ":" + secretToken + "@api.twilio.com?messaging_service_sid=MG00000000000000000000000000000002" +
				"&status_callback=https%3A%2F%2Fhooks.example.com%2Ftwilio%3Fx%3D1",
			wantUser: accountSID,
			wantPath: "/2010-04-01/Accounts/" + accountSID + "/Messages.json",
			wantForm: url.Values{"To": {"+15551234567"}, "MessagingServiceSid": {"MG00000000000000000000000000000002"},
				"StatusCallback": {"https://hooks.example.com/twilio?x=1"}, "Body": {secretBody}},
		},
		"API key for another account": {
			url:      "twilio://SK00000000000000000000000000000003:" + secretToken + "@api.twilio.com?account_sid=AC00000000000000000000000000000004&from=Pulse",
			wantUser: "SK00000000000000000000000000000003",
			wantPath: "/2010-04-01/Accounts/AC00000000000000000000000000000004/Messages.json",
			wantForm: url.Values{"To": {"+15551234567"}, "From": {"Pulse"}, "Body": {secretBody}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answer(http.StatusCreated, nil, created))
			p := b.provider(t, tt.url)

			res := p.Send(context.Background(), channel.Message{NotificationID: "ntf_1", Channel: "sms", To: "+15551234567", Body: secretBody})

			want := channel.Result{Outcome: channel.Delivered, StatusCode: 201, ProviderMessageID: "SM0123456789abcdef0123456789abcdef"}
			require.Empty(t, cmp.Diff(want, res, cmpopts.EquateErrors()), "(-want +got)")
			got := <-b.got
			wantReq := request{method: http.MethodPost, path: tt.wantPath, contentType: "application/x-www-form-urlencoded",
				accept: "application/json", user: tt.wantUser, password: secretToken, basicAuth: true, form: tt.wantForm}
			require.Empty(t, cmp.Diff(wantReq, got, cmp.AllowUnexported(request{})), "(-want +got)")
		})
	}
}

func TestSendClassifiesAnswers(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	twilioError := func(code, status int, message string) string {
		return `{"code":` + itoa(code) + `,"message":"` + message + `","more_info":"https://www.twilio.com/docs/errors/` + itoa(code) +
			`","status":` + itoa(status) + `}`
	}
	tests := map[string]struct {
		respond http.HandlerFunc
		want    channel.Result
		wantErr string
	}{
		"invalid number is undeliverable": {
			respond: answer(400, nil, twilioError(21211, 400, "The 'To' number is not a valid phone number.")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "21211", Undeliverable: true},
			wantErr: "send sms: twilio answered 400 Bad Request: error 21211: The 'To' number is not a valid phone number. " +
				"(https://www.twilio.com/docs/errors/21211)",
		},
		"recipient replied STOP is undeliverable": {
			respond: answer(400, nil, twilioError(21610, 400, "Attempt to send to unsubscribed recipient")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "21610", Undeliverable: true},
			wantErr: "error 21610: Attempt to send to unsubscribed recipient",
		},
		"other 4xx is permanent with its code": {
			respond: answer(400, nil, twilioError(21408, 400, "Permission to send an SMS has not been enabled for the region")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "21408"},
			wantErr: "error 21408",
		},
		"bad credentials are permanent": {
			respond: answer(401, nil, twilioError(20003, 401, "Authenticate")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 401, ErrorCode: "20003"},
			wantErr: "401 Unauthorized: error 20003",
		},
		"429 with Retry-After seconds is transient": {
			respond: answer(429, map[string]string{"Retry-After": "7"}, twilioError(20429, 429, "Too Many Requests")),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 429, ErrorCode: "20429", RetryAfter: 7 * time.Second},
			wantErr: "429 Too Many Requests: error 20429",
		},
		"error 20429 under another status is transient": {
			respond: answer(400, nil, twilioError(20429, 400, "Too Many Requests")),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 400, ErrorCode: "20429"},
		},
		"503 with Retry-After date is transient": {
			respond: answer(503, map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, ""),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 503, RetryAfter: 90 * time.Second},
			wantErr: "send sms: twilio answered 503 Service Unavailable",
		},
		"500 with an HTML body is transient": {
			respond: answer(500, nil, "<html>"+secretBody+"</html>"),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 500},
		},
		"404 without a body is permanent": {
			respond: answer(404, nil, ""),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 404},
			wantErr: "send sms: twilio answered 404 Not Found",
		},
		"201 without a sid is delivered": {
			respond: answer(201, nil, `{}`),
			want:    channel.Result{Outcome: channel.Delivered, StatusCode: 201},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.respond)
			p := b.provider(t, "twilio://"+accountSID+":"+secretToken+"@api.twilio.com?from=%2B15550001111")

			got := p.Send(context.Background(), channel.Message{NotificationID: "ntf_2", To: "+15551234567", Body: secretBody})

			require.Empty(t, cmp.Diff(tt.want, got, cmpopts.IgnoreFields(channel.Result{}, "Err")), "(-want +got)")
			if tt.want.Outcome == channel.Delivered {
				require.NoError(t, got.Err)
				return
			}
			require.Error(t, got.Err)
			if tt.wantErr != "" {
				require.Contains(t, got.Err.Error(), tt.wantErr)
			}
			require.NotContains(t, got.Err.Error(), secretToken)
			require.NotContains(t, got.Err.Error(), secretBody)
			require.Equal(t, int32(1), b.calls.Load(), "a provider never retries by itself")
		})
	}
}

func TestSendConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	addr := pulsetest.FreeAddr(t)
	cfg, err := sms.ParseURL("twilio://" + accountSID + ":" + secretToken + "@api.twilio.com?from=%2B15550001111&base_url=http%3A%2F%2F" + addr)
	require.NoError(t, err)
	p, err := sms.New(cfg)
	require.NoError(t, err)

	got := p.Send(context.Background(), channel.Message{NotificationID: "ntf_3", To: "+15551234567", Body: secretBody})

	require.Equal(t, channel.Transient, got.Outcome)
	require.ErrorContains(t, got.Err, "connection refused")
	require.NotContains(t, got.Err.Error(), secretToken)
	require.NotContains(t, got.Err.Error(), secretBody)
}

func TestSendCancelledContextIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusCreated, nil, created))
	p := b.provider(t, "twilio://"+accountSID+":"+secretToken+"@api.twilio.com?from=%2B15550001111")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	got := p.Send(ctx, channel.Message{NotificationID: "ntf_4", To: "+15551234567", Body: secretBody})

	require.Equal(t, channel.Transient, got.Outcome)
	require.ErrorIs(t, got.Err, context.Canceled)
	require.Zero(t, b.calls.Load())
}

func TestSendRefusesAnEmptyMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusCreated, nil, created))
	p := b.provider(t, "twilio://"+accountSID+":"+secretToken+"@api.twilio.com?from=%2B15550001111")

	for name, m := range map[string]channel.Message{
		"no recipient": {NotificationID: "n", Body: secretBody},
		"no body":      {NotificationID: "n", To: "+15551234567"},
	} {
		got := p.Send(context.Background(), m)
		require.Equal(t, channel.Permanent, got.Outcome, name)
		require.Error(t, got.Err, name)
	}
	require.Zero(t, b.calls.Load())
}

func TestSendReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(answer(http.StatusCreated, nil, created))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg, err := sms.ParseURL("twilio://" + accountSID + ":" + secretToken + "@api.twilio.com?from=%2B15550001111&base_url=" + url.QueryEscape(srv.URL))
	require.NoError(t, err)
	p, err := sms.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })

	for range 5 {
		require.Equal(t, channel.Delivered, p.Send(context.Background(), channel.Message{NotificationID: "n", To: "+15551234567", Body: "hi"}).Outcome)
	}
	require.Equal(t, int32(1), conns.Load())
}

func itoa(n int) string { return strconv.Itoa(n) }
