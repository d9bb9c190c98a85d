package push_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/internal/channeltest"
	"github.com/pulse-knative/pulse/pkg/channel/push"
)

// Strings that must never appear in an error: message content.
const (
	secretBody = "SECRET-MESSAGE-BODY"
	project    = "pulse-test"
)

// sent is one messages:send request as the test's FCM saw it.
type sent struct {
	method, path, auth, contentType string
	body                            map[string]any
}

type testBundle struct {
	now    time.Time
	key    *capture.ServiceAccountKey
	file   string // the key file
	server *httptest.Server
	grants atomic.Int32
	// expiresIn is the lifetime, in seconds, of the tokens the token endpoint grants.
	expiresIn atomic.Int32
	sends     atomic.Int32
	got       chan sent

	mu      sync.Mutex
	respond http.HandlerFunc // the answer to messages:send
	issued  map[string]bool
}

// setup starts a server that plays Google's OAuth2 token endpoint at /token, checking each
// JWT-bearer assertion's RS256 signature and claims, and FCM's messages:send, answering with
// respond once the bearer token is one it issued.
func setup(t *testing.T, respond http.HandlerFunc) *testBundle {
	t.Helper()
	b := &testBundle{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), got: make(chan sent, 64), respond: respond, issued: map[string]bool{}}
	b.expiresIn.Store(3600)
	b.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			b.token(t, w, r)
			return
		}
		b.sends.Add(1)
		raw, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal(raw, &body))
		token, _ := cutBearer(r.Header.Get("Authorization"))
		b.mu.Lock()
		known, answer := b.issued[token], b.respond
		b.mu.Unlock()
		b.got <- sent{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), body: body}
		if !known {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		answer(w, r)
	}))
	t.Cleanup(b.server.Close)
	// One key serves every test (RSA key generation is slow); each test's key file names its
	// own server as token_uri.
	key, err := sharedKey()
	require.NoError(t, err)
	var file map[string]string
	require.NoError(t, json.Unmarshal(key.JSON, &file))
	file["token_uri"] = b.server.URL + "/token"
	raw, err := json.Marshal(file)
	require.NoError(t, err)
	b.key = key
	b.file = filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(b.file, raw, 0o600))
	return b
}

var sharedKey = sync.OnceValues(func() (*capture.ServiceAccountKey, error) {
	return capture.NewServiceAccountKey(project, "http://127.0.0.1:1/token")
})

func cutBearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):], true
	}
	return "", false
}

// token plays the token endpoint: it grants only a JWT-bearer assertion signed by the test
// key, issued by its service account, for FCM's scope, addressed to this endpoint, valid
// for an hour from now.
func (b *testBundle) token(t *testing.T, w http.ResponseWriter, r *http.Request) {
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	require.NoError(t, r.ParseForm())
	require.Equal(t, "urn:ietf:params:oauth:grant-type:jwt-bearer", r.PostForm.Get("grant_type"))
	claims, err := capture.VerifyJWTAssertion(r.PostForm.Get("assertion"), b.key.Public)
	require.NoError(t, err)
	require.Equal(t, b.key.Email, claims.Iss)
	require.Equal(t, "https://www.googleapis.com/auth/firebase.messaging", claims.Scope)
	require.Equal(t, b.server.URL+"/token", claims.Aud)
	require.Equal(t, int64(3600), claims.Exp-claims.Iat)
	require.InDelta(t, time.Now().Unix(), claims.Iat, 60)

	n := b.grants.Add(1)
	token := "ya29.test-" + string(rune('a'+n))
	b.mu.Lock()
	b.issued[token] = true
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"access_token":"`+token+`","token_type":"Bearer","expires_in":`+strconv.Itoa(int(b.expiresIn.Load()))+`}`)
}

// provider builds a provider for the bundle's key, pointed at its server.
func (b *testBundle) provider(t *testing.T, extra string) *push.Provider {
	t.Helper()
	raw := "fcm://?credentials_file=" + url.QueryEscape(b.file) + "&api_url=" + url.QueryEscape(b.server.URL) + extra
	return channeltest.Provider(t, push.ParseURL, push.New, raw, b.now)
}

// answer answers as FCM does, in JSON.
func answer(status int, header map[string]string, body string) http.HandlerFunc {
	return channeltest.Answer(status, "application/json; charset=UTF-8", header, body)
}

const accepted = `{"name":"projects/pulse-test/messages/0:1500415314455276%31bd1c9631bd1c96"}`

func TestSendPostsTheMessage(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		extra    string
		msg      channel.Message
		wantPath string
		wantBody string
	}{
		"title, body, data map and overrides": {
			msg: channel.Message{NotificationID: "ntf_1", Channel: "push", To: "device-token-1", Subject: "Order shipped", Body: secretBody,
				Data: json.RawMessage(`{"data":{"order":"42"},"android":{"priority":"high","ttl":"60s"},"apns":{"headers":{"apns-priority":"10"}},"webpush":{"headers":{"Urgency":"high"}}}`)},
			wantPath: "/v1/projects/pulse-test/messages:send",
			wantBody: `{"message":{"token":"device-token-1","notification":{"title":"Order shipped","body":"` + secretBody + `"},
				"data":{"order":"42"},"android":{"priority":"high","ttl":"60s"},"apns":{"headers":{"apns-priority":"10"}},"webpush":{"headers":{"Urgency":"high"}}}}`,
		},
		"data only, another project": {
			extra:    "&project=other-project",
			msg:      channel.Message{NotificationID: "ntf_2", To: "device-token-2", Data: json.RawMessage(`{"data":{"k":"v"}}`)},
			wantPath: "/v1/projects/other-project/messages:send",
			wantBody: `{"message":{"token":"device-token-2","data":{"k":"v"}}}`,
		},
		"body only": {
			msg:      channel.Message{NotificationID: "ntf_3", To: "device-token-3", Body: "hello"},
			wantPath: "/v1/projects/pulse-test/messages:send",
			wantBody: `{"message":{"token":"device-token-3","notification":{"body":"hello"}}}`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answer(http.StatusOK, nil, accepted))
			p := b.provider(t, tt.extra)

			res := p.Send(context.Background(), tt.msg)

			want := channel.Result{Outcome: channel.Delivered, StatusCode: 200,
				ProviderMessageID: "projects/pulse-test/messages/0:1500415314455276%31bd1c9631bd1c96"}
			require.Empty(t, cmp.Diff(want, res, cmpopts.EquateErrors()), "(-want +got)")
			got := <-b.got
			require.Equal(t, http.MethodPost, got.method)
			require.Equal(t, tt.wantPath, got.path)
			require.Equal(t, "Bearer ya29.test-b", got.auth)
			require.Equal(t, "application/json; charset=utf-8", got.contentType)
			var wantBody map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.wantBody), &wantBody))
			require.Empty(t, cmp.Diff(wantBody, got.body), "(-want +got)")
		})
	}
}

// TestSendReusesTheToken: one access token serves every send, concurrent ones included.
func TestSendReusesTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusOK, nil, accepted))
	p := b.provider(t, "")

	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res := p.Send(context.Background(), channel.Message{NotificationID: "ntf", To: "device-token", Body: "hi"})
			require.Equal(t, channel.Delivered, res.Outcome, "%v", res.Err)
		})
	}
	wg.Wait()

	require.Equal(t, int32(1), b.grants.Load(), "token requests")
	require.Equal(t, int32(n), b.sends.Load())
}

// TestSendRefreshesATokenAboutToExpire: a token within seconds of its expiry is not used; a
// new one is fetched.
func TestSendRefreshesATokenAboutToExpire(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusOK, nil, accepted))
	b.expiresIn.Store(5) // inside oauth2's ten-second early-expiry window
	p := b.provider(t, "")

	for range 3 {
		res := p.Send(context.Background(), channel.Message{NotificationID: "ntf", To: "device-token", Body: "hi"})
		require.Equal(t, channel.Delivered, res.Outcome, "%v", res.Err)
	}

	require.Equal(t, int32(3), b.grants.Load(), "token requests")
	var auths []string
	for range 3 {
		auths = append(auths, (<-b.got).auth)
	}
	require.Equal(t, []string{"Bearer ya29.test-b", "Bearer ya29.test-c", "Bearer ya29.test-d"}, auths)
}

// TestSendTokenURLOverride: token_url replaces the key's token_uri, and the assertion is
// addressed to it.
func TestSendTokenURLOverride(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusOK, nil, accepted))
	// A key whose token_uri leads nowhere: only the override can get a token.
	var file map[string]string
	require.NoError(t, json.Unmarshal(b.key.JSON, &file))
	file["token_uri"] = "http://127.0.0.1:1/token"
	raw, err := json.Marshal(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(b.file, raw, 0o600))
	p := b.provider(t, "&token_url="+url.QueryEscape(b.server.URL+"/token"))

	res := p.Send(context.Background(), channel.Message{NotificationID: "ntf", To: "device-token", Body: "hi"})

	require.Equal(t, channel.Delivered, res.Outcome, "%v", res.Err)
	require.Equal(t, int32(1), b.grants.Load())
}

func TestSendClassifiesAnswers(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fcmError := func(code int, status, fcmCode, message string) string {
		details := ""
		if fcmCode != "" {
			details = `,"details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[]},` +
				`{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"` + fcmCode + `"}]`
		}
		return `{"error":{"code":` + itoa(code) + `,"message":"` + message + `","status":"` + status + `"` + details + `}}`
	}
	tests := map[string]struct {
		respond http.HandlerFunc
		want    channel.Result
		wantErr string
	}{
		"UNREGISTERED is undeliverable": {
			respond: answer(404, nil, fcmError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 404, ErrorCode: "UNREGISTERED", Undeliverable: true},
			wantErr: "send push: fcm answered 404 Not Found: UNREGISTERED: Requested entity was not found.",
		},
		"INVALID_ARGUMENT is permanent": {
			respond: answer(400, nil, fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "INVALID_ARGUMENT"},
			wantErr: "400 Bad Request: INVALID_ARGUMENT: The registration token",
		},
		"SENDER_ID_MISMATCH is permanent": {
			respond: answer(403, nil, fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 403, ErrorCode: "SENDER_ID_MISMATCH"},
		},
		"QUOTA_EXCEEDED with Retry-After seconds is transient": {
			respond: answer(429, map[string]string{"Retry-After": "30"}, fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded")),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 429, ErrorCode: "QUOTA_EXCEEDED", RetryAfter: 30 * time.Second},
		},
		"UNAVAILABLE with Retry-After date is transient": {
			respond: answer(503, map[string]string{"Retry-After": now.Add(2 * time.Minute).Format(http.TimeFormat)},
				fcmError(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")),
			want: channel.Result{Outcome: channel.Transient, StatusCode: 503, ErrorCode: "UNAVAILABLE", RetryAfter: 2 * time.Minute},
		},
		"INTERNAL is transient": {
			respond: answer(500, nil, fcmError(500, "INTERNAL", "INTERNAL", "Internal error encountered.")),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 500, ErrorCode: "INTERNAL"},
		},
		"status without an FcmError detail": {
			respond: answer(400, nil, fcmError(400, "INVALID_ARGUMENT", "", "Invalid JSON payload received.")),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 400, ErrorCode: "INVALID_ARGUMENT"},
		},
		"502 from a proxy is transient": {
			respond: answer(502, nil, "<html>"+secretBody+"</html>"),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 502},
			wantErr: "send push: fcm answered 502 Bad Gateway",
		},
		"429 without a body is transient": {
			respond: answer(429, map[string]string{"Retry-After": "5"}, ""),
			want:    channel.Result{Outcome: channel.Transient, StatusCode: 429, RetryAfter: 5 * time.Second},
		},
		"404 without a body is permanent": {
			respond: answer(404, nil, ""),
			want:    channel.Result{Outcome: channel.Permanent, StatusCode: 404},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.respond)
			p := b.provider(t, "")

			got := p.Send(context.Background(), channel.Message{NotificationID: "ntf", To: "device-token", Subject: secretBody, Body: secretBody,
				Data: json.RawMessage(`{"data":{"k":"` + secretBody + `"}}`)})

			require.Empty(t, cmp.Diff(tt.want, got, cmpopts.IgnoreFields(channel.Result{}, "Err")), "(-want +got)")
			require.Error(t, got.Err)
			if tt.wantErr != "" {
				require.Contains(t, got.Err.Error(), tt.wantErr)
			}
			require.NotContains(t, got.Err.Error(), secretBody)
			require.NotContains(t, got.Err.Error(), "ya29")
			require.Equal(t, int32(1), b.sends.Load(), "a provider never retries by itself")
		})
	}
}

func TestSendTokenFailureIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusOK, nil, accepted))
	// A token endpoint that refuses the grant, as Google does for a deleted key.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature. `+secretBody+`"}`)
	}))
	t.Cleanup(refusing.Close)
	p := b.provider(t, "&token_url="+url.QueryEscape(refusing.URL))

	got := p.Send(context.Background(), channel.Message{NotificationID: "ntf", To: "device-token", Body: "hi"})

	require.Equal(t, channel.Transient, got.Outcome)
	require.EqualError(t, got.Err, "send push: fetch access token: token endpoint answered 400 Bad Request: invalid_grant")
	require.Zero(t, b.sends.Load())
}

func TestSendStopsWaitingForATokenWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusOK, nil, accepted))
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	p := b.provider(t, "&token_url="+url.QueryEscape(hanging.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	got := p.Send(ctx, channel.Message{NotificationID: "ntf", To: "device-token", Body: "hi"})

	require.Equal(t, channel.Transient, got.Outcome)
	require.ErrorIs(t, got.Err, context.DeadlineExceeded)
}

func TestSendRefusesUnusableMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, answer(http.StatusOK, nil, accepted))
	p := b.provider(t, "")

	tests := map[string]struct {
		msg     channel.Message
		wantErr string
	}{
		"no token":           {msg: channel.Message{Body: "b"}, wantErr: "send push: the device token is required"},
		"data not an object": {msg: channel.Message{To: "t", Data: json.RawMessage(`["` + secretBody + `"]`)}, wantErr: "send push: must be a JSON object: data"},
		"data value not a string": {
			msg: channel.Message{To: "t", Data: json.RawMessage(`{"data":{"k":{"x":"` + secretBody + `"}}}`)}, wantErr: "send push: must be a string: data.data.k",
		},
	}
	for name, tt := range tests {
		got := p.Send(context.Background(), tt.msg)
		require.Equal(t, channel.Permanent, got.Outcome, name)
		require.EqualError(t, got.Err, tt.wantErr, name)
	}
	require.Zero(t, b.sends.Load())
	require.Zero(t, b.grants.Load())
}

func itoa(n int) string { return strconv.Itoa(n) }
