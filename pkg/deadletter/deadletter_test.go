package deadletter_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/deadletter"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

type testBundle struct {
	store    *store.Store
	redis    *redis.Client
	keys     queue.Keys
	deliver  http.Handler
	receiver *httptest.Server
	mu       sync.Mutex
	// hooks counts the webhook calls the receiver got, by notification id.
	hooks   map[string]int
	manager *deadletter.Manager
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{hooks: map[string]int{}}
	b.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hooks[r.Header.Get("webhook-id")]++
		b.mu.Unlock()
	}))
	t.Cleanup(b.receiver.Close)

	st, err := store.Open(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.NoError(t, st.Migrate(ctx))
	b.store = st
	redisURL, prefix := pulsetest.Redis(t)
	b.redis, err = queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	t.Cleanup(func() { b.redis.Close() })
	b.keys = queue.NewKeys(prefix)

	cfg := config.Deliver{WebhookSecret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("pulse-test-signing-key-0123456789")), SendTimeout: 5 * time.Second,
		Lease: time.Minute, AllowPrivateWebhooks: true, Retry: config.Retry{Schedule: []time.Duration{time.Minute}}}
	providers, err := delivery.Providers(cfg, delivery.ProviderDeps{})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := delivery.NewDeliverer(delivery.DelivererConfig{Store: st, Providers: providers, Logger: logger,
		Retry: cfg.Retry, Lease: cfg.Lease, SendTimeout: cfg.SendTimeout, Recorder: recorder.New(b.redis, b.keys)})
	t.Cleanup(d.Close)
	b.deliver = delivery.NewHandler(d, logger)
	b.manager = deadletter.New(st, b.redis, b.keys, nil)
	return b
}

// insert stores a queued webhook notification of priority and adds its entry to the stream.
func (b *testBundle) insert(t *testing.T, p notification.Priority) string {
	t.Helper()
	acc, err := b.store.Insert(context.Background(), []store.NewNotification{{Source: "src", EventID: pulsetest.Name("e"),
		Request: notification.Request{Channel: notification.Webhook, To: b.receiver.URL + "/hook", Priority: p,
			Data: json.RawMessage(`{"n":1}`)}, MaxAttempts: 3}})
	require.NoError(t, err)
	require.NoError(t, queue.New(b.redis, b.keys, nil).Enqueue(context.Background(),
		[]queue.Entry{{NotificationID: acc[0].ID, Channel: "webhook", Priority: string(p)}}))
	return acc[0].ID
}

// giveUp reads every new entry of p's stream and moves it to the dead-letter stream, as the
// stream source does with entries that keep failing.
func (b *testBundle) giveUp(t *testing.T, p notification.Priority) {
	t.Helper()
	g := queue.NewGroup(b.redis, b.keys, string(p), "deliver", "c1")
	require.NoError(t, g.Create(context.Background()))
	msgs, err := g.Read(context.Background(), 100, 0)
	require.NoError(t, err)
	for _, m := range msgs {
		moved, err := g.DeadLetter(context.Background(), m.ID, "sink answered 503", 0, time.Now())
		require.NoError(t, err)
		require.True(t, moved)
	}
}

// dispatch reads every new entry of p's stream and posts it to the deliver handler, as the
// stream source does, returning the notification ids it dispatched.
func (b *testBundle) dispatch(t *testing.T, p notification.Priority) []string {
	t.Helper()
	g := queue.NewGroup(b.redis, b.keys, string(p), "deliver", "c1")
	msgs, err := g.Read(context.Background(), 100, 0)
	require.NoError(t, err)
	var ids []string
	for _, m := range msgs {
		e := event.New()
		e.SetID(m.ID)
		e.SetSource("/pulse/stream-source/" + string(p))
		e.SetType(notification.TypeDispatch)
		require.NoError(t, e.SetData(event.ApplicationJSON, m.Fields))
		body, err := json.Marshal(e)
		require.NoError(t, err)
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		rec := httptest.NewRecorder()
		b.deliver.ServeHTTP(rec, req)
		require.Equal(t, 2, rec.Code/100, rec.Body.String())
		require.NoError(t, g.Ack(context.Background(), m.ID))
		ids = append(ids, m.Fields[queue.FieldNotificationID])
	}
	return ids
}

func (b *testBundle) status(t *testing.T, id string) notification.Status {
	t.Helper()
	return testfactory.Get(t, b.store, id).Status
}

func TestRedriveDeliversEachEntryOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	high1, high2, done := b.insert(t, notification.High), b.insert(t, notification.High), b.insert(t, notification.High)
	low := b.insert(t, notification.Low)
	b.giveUp(t, notification.High)
	b.giveUp(t, notification.Low)
	// cron's recover job re-enqueued one meanwhile, and it was delivered.
	require.NoError(t, queue.New(b.redis, b.keys, nil).Enqueue(ctx, []queue.Entry{{NotificationID: done, Channel: "webhook", Priority: "high"}}))
	require.Equal(t, []string{done}, b.dispatch(t, notification.High))
	require.Equal(t, notification.Delivered, b.status(t, done))

	list, err := b.manager.List(ctx, 0)
	require.NoError(t, err)
	type row struct {
		Priority, NotificationID, Channel, Reason string
		Status                                    notification.Status
		Deliveries                                int64
	}
	got := make([]row, len(list))
	for i, e := range list {
		got[i] = row{e.Priority, e.NotificationID, e.Channel, e.Reason, e.Status, e.Deliveries}
		require.NotEmpty(t, e.ID)
		require.False(t, e.FailedAt.IsZero())
	}
	want := []row{
		{"high", high1, "webhook", "sink answered 503", notification.Queued, 1},
		{"high", high2, "webhook", "sink answered 503", notification.Queued, 1},
		{"high", done, "webhook", "sink answered 503", notification.Delivered, 1},
		{"low", low, "webhook", "sink answered 503", notification.Queued, 1},
	}
	require.Empty(t, cmp.Diff(want, got), "(-want +got)")

	// Two operators redrive everything at once: each entry goes back once.
	var wg sync.WaitGroup
	results := make([][]deadletter.Redriven, 2)
	for i := range results {
		wg.Go(func() {
			r, err := b.manager.Redrive(ctx, nil)
			require.NoError(t, err)
			results[i] = r
		})
	}
	wg.Wait()
	outcomes := map[string]int{}
	for _, r := range results {
		for _, e := range r {
			outcomes[e.NotificationID+" "+e.Outcome]++
		}
	}
	require.Empty(t, cmp.Diff(map[string]int{
		high1 + " redriven": 1, high2 + " redriven": 1, low + " redriven": 1, done + " dropped": 1,
	}, func() map[string]int {
		m := map[string]int{}
		for k, v := range outcomes {
			if !strings.HasSuffix(k, " missing") {
				m[k] = v
			}
		}
		return m
	}()), "(-want +got)")

	require.ElementsMatch(t, []string{high1, high2}, b.dispatch(t, notification.High))
	require.Equal(t, []string{low}, b.dispatch(t, notification.Low))
	for _, id := range []string{high1, high2, low, done} {
		require.Equal(t, notification.Delivered, b.status(t, id), id)
	}
	b.mu.Lock()
	require.Empty(t, cmp.Diff(map[string]int{high1: 1, high2: 1, low: 1, done: 1}, b.hooks), "(-want +got)")
	b.mu.Unlock()

	list, err = b.manager.List(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, list, "the dead-letter streams are empty")
}

func TestRedriveByID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first, second := b.insert(t, notification.High), b.insert(t, notification.High)
	b.giveUp(t, notification.High)
	list, err := b.manager.List(ctx, 0)
	require.NoError(t, err)
	require.Len(t, list, 2)

	_, err = b.manager.Redrive(ctx, []string{list[1].ID, "1-1"})
	require.ErrorIs(t, err, deadletter.ErrNotFound)
	_, err = b.manager.Redrive(ctx, []string{"not-an-id"})
	require.ErrorIs(t, err, deadletter.ErrNotFound)

	r, err := b.manager.Redrive(ctx, []string{list[1].ID})
	require.NoError(t, err)
	require.Empty(t, cmp.Diff([]deadletter.Redriven{{Priority: "high", ID: list[1].ID, NotificationID: second,
		Status: notification.Queued, Outcome: queue.Redriven}}, r), "(-want +got)")
	require.Equal(t, []string{second}, b.dispatch(t, notification.High))

	list, err = b.manager.List(ctx, 0)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, first, list[0].NotificationID)
	require.Equal(t, notification.Queued, list[0].Status)
}
