package delivery_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// secretKey is the signing key; the secret is its whsec_ form.
var secretKey = []byte("pulse-test-signing-key-0123456789")

func secret() string { return "whsec_" + base64.StdEncoding.EncodeToString(secretKey) }

type received struct {
	header http.Header
	body   []byte
}

// storeBundle is the part of a test bundle that reads back what the store holds.
type storeBundle struct {
	store *store.Store
}

func (b *storeBundle) get(t *testing.T, id string) notification.Notification {
	t.Helper()
	return testfactory.Get(t, b.store, id)
}

type testBundle struct {
	storeBundle
	redis     *redis.Client
	keys      queue.Keys
	handler   http.Handler
	deliverer *delivery.Deliverer
	receiver  *httptest.Server
	// respond decides the receiver's answer; it defaults to 200.
	respond atomic.Value // func(w http.ResponseWriter)
	mu      sync.Mutex
	got     []received
	now     time.Time
}

type options struct {
	allowPrivate bool
	sendTimeout  time.Duration
	// metricsRedis is where the deliverer writes its metrics; nil means the bundle's Redis.
	metricsRedis *redis.Client
	// logs gets the deliverer's log lines, in JSON; nil discards them.
	logs io.Writer
}

func setup(t *testing.T, opts options) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{now: time.Now().UTC().Truncate(time.Millisecond)}
	b.respond.Store(func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	b.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, received{header: r.Header.Clone(), body: body})
		b.mu.Unlock()
		b.respond.Load().(func(http.ResponseWriter))(w)
	}))
	t.Cleanup(b.receiver.Close)

	b.store = testfactory.Store(ctx, t, &testfactory.StoreOpts{Now: func() time.Time { return b.now }})
	redisURL, prefix := pulsetest.Redis(t)
	var err error
	b.redis, err = queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	t.Cleanup(func() { b.redis.Close() })
	b.keys = queue.NewKeys(prefix)

	if opts.sendTimeout == 0 {
		opts.sendTimeout = 5 * time.Second
	}
	cfg := config.Deliver{WebhookSecret: secret(), SendTimeout: opts.sendTimeout, Lease: time.Minute,
		AllowPrivateWebhooks: opts.allowPrivate,
		Retry:                config.Retry{Schedule: []time.Duration{10 * time.Second, time.Minute}, Jitter: 0.2}}
	providers, err := delivery.Providers(cfg, delivery.ProviderDeps{})
	require.NoError(t, err)
	logger := slog.New(slog.NewJSONHandler(cmp.Or(opts.logs, io.Discard), nil))
	metricsRedis := b.redis
	if opts.metricsRedis != nil {
		metricsRedis = opts.metricsRedis
	}
	d := delivery.NewDeliverer(delivery.DelivererConfig{Store: b.store, Providers: providers, Logger: logger,
		Retry: cfg.Retry, Lease: cfg.Lease, SendTimeout: cfg.SendTimeout, Recorder: recorder.New(metricsRedis, b.keys),
		Jitter: func() float64 { return 0.5 }}) // 0.5 means no spread: waits are exact
	t.Cleanup(d.Close)
	b.deliverer = d
	b.handler = delivery.NewHandler(d, logger)
	return b
}

func (b *testBundle) insert(t *testing.T, mutate func(*notification.Request)) string {
	t.Helper()
	req := notification.Request{Channel: notification.Webhook, To: b.receiver.URL + "/hook", Priority: notification.High,
		Data: json.RawMessage(`{"order":42}`), Subject: "Order shipped", Metadata: map[string]string{"tenant": "t1"}}
	if mutate != nil {
		mutate(&req)
	}
	acc, err := b.store.Insert(context.Background(), []store.NewNotification{{Source: "src", EventID: pulsetest.Name("e"), Request: req, MaxAttempts: 3}})
	require.NoError(t, err)
	return acc[0].ID
}

// dispatch sends a dispatch event for id and returns the status code.
func (b *testBundle) dispatch(t *testing.T, typ string, data any) int {
	t.Helper()
	e := event.New()
	e.SetID(pulsetest.Name("1-"))
	e.SetSource("/pulse/stream-source/high")
	e.SetType(typ)
	require.NoError(t, e.SetData(event.ApplicationJSON, data))
	body, err := json.Marshal(e)
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, req)
	return rec.Code
}

func (b *testBundle) deliver(t *testing.T, id string) int {
	return b.dispatch(t, notification.TypeDispatch, map[string]string{queue.FieldNotificationID: id, queue.FieldChannel: "webhook", queue.FieldEnqueuedAt: "1"})
}

func (b *testBundle) calls() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.got...)
}

// verify checks a Standard Webhooks signature, written from the spec: base64 of
// HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"), prefixed "v1,".
func verify(t *testing.T, r received) {
	t.Helper()
	mac := hmac.New(sha256.New, secretKey)
	fmt.Fprintf(mac, "%s.%s.%s", r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.Contains(t, strings.Fields(r.header.Get("webhook-signature")), want)
}

func TestDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	id := b.insert(t, nil)
	require.Equal(t, http.StatusAccepted, b.deliver(t, id))

	calls := b.calls()
	require.Len(t, calls, 1)
	verify(t, calls[0])
	require.Equal(t, id, calls[0].header.Get("webhook-id"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(calls[0].body, &body))
	require.Equal(t, map[string]any{"order": float64(42)}, body["data"])
	require.Equal(t, "Order shipped", body["subject"])
	require.Equal(t, map[string]any{"tenant": "t1"}, body["metadata"])

	n := b.get(t, id)
	require.Equal(t, notification.Delivered, n.Status)
	require.Equal(t, 1, n.Attempts)
	require.NotNil(t, n.DeliveredAt)
	attempts, err := b.store.Attempts(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	require.Equal(t, "delivered", attempts[0].Outcome)
	require.Equal(t, 200, attempts[0].StatusCode)

	b.deliverer.Close() // the metrics are written after the answer; Close waits for them
	counts, err := b.redis.HGetAll(context.Background(), b.keys.Attempts()).Result()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"webhook:high:delivered": "1"}, counts)
	count, err := b.redis.HGet(context.Background(), b.keys.Latency("webhook", "high"), recorder.LatencyCountField).Result()
	require.NoError(t, err)
	require.Equal(t, "1", count)
}

// TestCloseWaitsForMetrics: the answer does not wait for the metrics, but Close does, so
// every delivery is counted once the deliverer is closed.
func TestCloseWaitsForMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.insert(t, nil)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { assert.Equal(t, http.StatusAccepted, b.deliver(t, id)) })
	}
	wg.Wait()
	b.deliverer.Close()

	ctx := context.Background()
	counts, err := b.redis.HGetAll(ctx, b.keys.Attempts()).Result()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"webhook:high:delivered": strconv.Itoa(n)}, counts)
	count, err := b.redis.HGet(ctx, b.keys.Latency("webhook", "high"), recorder.LatencyCountField).Result()
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(n), count)
}

// TestMetricsDoNotHoldTheAnswer: with a Redis that takes connections and never answers,
// deliveries are still answered; when it goes away, each failed batch of metrics is logged
// once, not once per delivery, and Close returns.
func TestMetricsDoNotHoldTheAnswer(t *testing.T) {
	t.Parallel()
	stalled, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := stalled.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	release := func() {
		stalled.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(release)
	metricsRedis := redis.NewClient(&redis.Options{Addr: stalled.Addr().String(), MaxRetries: -1, ReadTimeout: time.Minute})
	t.Cleanup(func() { metricsRedis.Close() })
	var logs bytes.Buffer
	b := setup(t, options{allowPrivate: true, metricsRedis: metricsRedis, logs: &logs})

	const n = 5
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.insert(t, nil)
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		for _, id := range ids {
			assert.Equal(t, http.StatusAccepted, b.deliver(t, id))
		}
	}()
	select {
	case <-answered:
	case <-time.After(20 * time.Second):
		t.Fatal("the deliveries were not answered while Redis did not answer")
	}
	release()
	b.deliverer.Close()

	// Every observation was written by a flush that failed, each logged once with its count,
	// not once per delivery.
	var lost []int
	dec := json.NewDecoder(&logs)
	for dec.More() {
		var line struct {
			Msg          string `json:"msg"`
			Observations int    `json:"observations"`
		}
		require.NoError(t, dec.Decode(&line))
		if line.Msg == "metrics not recorded" {
			lost = append(lost, line.Observations)
		}
	}
	require.NotEmpty(t, lost)
	total := 0
	for _, k := range lost {
		total += k
	}
	require.Equal(t, n, total, "warnings %v", lost)
}

// TestAnswerDecidesWhatFollows: a transient failure schedules a retry after the backoff, or
// after the receiver's Retry-After; a permanent one fails the notification for good.
func TestAnswerDecidesWhatFollows(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		respond       func(w http.ResponseWriter)
		want          notification.Status
		wantNext      time.Duration // from now; 0 means no next attempt
		wantLastError string
	}{
		"transient failure schedules a retry": {
			respond:       func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
			want:          notification.Retrying,
			wantNext:      10 * time.Second,
			wantLastError: "503",
		},
		"Retry-After is honoured": {
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			want:     notification.Retrying,
			wantNext: 2 * time.Minute,
		},
		"permanent failure": {
			respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) },
			want:    notification.Failed,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{allowPrivate: true})
			b.respond.Store(tt.respond)
			id := b.insert(t, nil)
			require.Equal(t, http.StatusAccepted, b.deliver(t, id))
			n := b.get(t, id)
			require.Equal(t, tt.want, n.Status)
			require.Equal(t, tt.want == notification.Failed, n.FailedAt != nil, "failed at %v", n.FailedAt)
			if tt.wantNext == 0 {
				require.Nil(t, n.NextAttemptAt)
			} else {
				require.NotNil(t, n.NextAttemptAt)
				require.True(t, n.NextAttemptAt.Equal(b.now.Add(tt.wantNext)), "next attempt %s", n.NextAttemptAt)
			}
			require.Contains(t, n.LastError, tt.wantLastError)
		})
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true, sendTimeout: 200 * time.Millisecond})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b.respond.Store(func(w http.ResponseWriter) { <-release })
	id := b.insert(t, nil)
	require.Equal(t, http.StatusAccepted, b.deliver(t, id))
	require.Equal(t, notification.Retrying, b.get(t, id).Status)
}

func TestAttemptsExhausted(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	b.respond.Store(func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	id := b.insert(t, nil)
	for attempt := 1; attempt <= 3; attempt++ {
		require.Equal(t, http.StatusAccepted, b.deliver(t, id))
		n := b.get(t, id)
		require.Equal(t, attempt, n.Attempts)
		if attempt < 3 {
			require.Equal(t, notification.Retrying, n.Status)
			// What cron's release job does when the retry falls due.
			_, err := b.store.Pool().Exec(context.Background(), "update notifications set status = 'queued' where id = $1", id)
			require.NoError(t, err)
		}
	}
	n := b.get(t, id)
	require.Equal(t, notification.Failed, n.Status)
	require.Contains(t, n.LastError, "gave up after 3 attempts")
	require.Len(t, b.calls(), 3)
}

func TestRetryPastExpiryExpires(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	b.respond.Store(func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	id := b.insert(t, func(r *notification.Request) {
		soon := b.now.Add(5 * time.Second) // before the first retry at +10s
		r.ExpiresAt = &soon
	})
	require.Equal(t, http.StatusAccepted, b.deliver(t, id))
	require.Equal(t, notification.Expired, b.get(t, id).Status)
}

func TestDuplicateDispatchSendsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	id := b.insert(t, nil)
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Go(func() { codes <- b.deliver(t, id) })
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusAccepted, code)
	}
	require.Len(t, b.calls(), 1)
	require.Equal(t, http.StatusAccepted, b.deliver(t, id), "a dispatch of a delivered notification is acknowledged")
	require.Len(t, b.calls(), 1)
}

func TestRedisStreamSourceEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	id := b.insert(t, nil)
	code := b.dispatch(t, notification.TypeRedisStream, []string{queue.FieldNotificationID, id, queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, "1"})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, notification.Delivered, b.get(t, id).Status)
	require.Len(t, b.calls(), 1)
}

func TestPrivateDestinationRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: false})
	id := b.insert(t, nil) // the receiver listens on 127.0.0.1
	require.Equal(t, http.StatusAccepted, b.deliver(t, id))
	n := b.get(t, id)
	require.Equal(t, notification.Failed, n.Status)
	require.Contains(t, n.LastError, "loopback")
	require.Empty(t, b.calls())
}

func TestChannelWithoutProviderFails(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	id := b.insert(t, func(r *notification.Request) {
		*r = notification.Request{Channel: notification.SMS, To: "+15551234567", Body: "hi", Priority: notification.High}
	})
	require.Equal(t, http.StatusAccepted, b.deliver(t, id))
	n := b.get(t, id)
	require.Equal(t, notification.Failed, n.Status)
	require.Contains(t, n.LastError, "no provider")
}

func TestBadDispatchEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	require.Equal(t, http.StatusBadRequest, b.dispatch(t, "dev.other", map[string]string{}))
	require.Equal(t, http.StatusBadRequest, b.dispatch(t, notification.TypeDispatch, map[string]string{"channel": "webhook"}))
	require.Equal(t, http.StatusBadRequest, b.dispatch(t, notification.TypeRedisStream, []string{"odd"}))
	require.Equal(t, http.StatusAccepted, b.dispatch(t, notification.TypeDispatch, map[string]string{queue.FieldNotificationID: "unknown"}),
		"a dispatch for no notification is acknowledged, not retried forever")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute}
	for name, tc := range map[string]struct {
		attempt    int
		r          float64
		retryAfter time.Duration
		want       time.Duration
	}{
		"first":               {1, 0.5, 0, 5 * time.Second},
		"second":              {2, 0.5, 0, 30 * time.Second},
		"past the schedule":   {9, 0.5, 0, 2 * time.Minute},
		"jitter low":          {1, 0, 0, 4 * time.Second},
		"jitter high":         {2, 1, 0, 36 * time.Second},
		"retry-after longer":  {1, 0.5, time.Minute, time.Minute},
		"retry-after shorter": {2, 0.5, time.Second, 30 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, delivery.Backoff(schedule, tc.attempt, 0.2, tc.r, tc.retryAfter))
		})
	}
}

func FuzzNotificationID(f *testing.F) {
	f.Add(notification.TypeDispatch, []byte(`{"notification_id":"x","channel":"webhook"}`))
	f.Add(notification.TypeRedisStream, []byte(`["notification_id","x","channel","webhook"]`))
	f.Add(notification.TypeRedisStream, []byte(`["a"]`))
	f.Add(notification.TypeDispatch, []byte(`null`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e := event.New()
		e.SetType(typ)
		e.DataEncoded = data
		id, errs := delivery.NotificationID(e)
		if errs == nil {
			require.NotEmpty(t, id)
		}
	})
}
