package riverpeer_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/bench/riverpeer"
	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

const secret = "whsec_cml2ZXJwZWVyLXRlc3Qtd2ViaG9vay1zaWduaW5nLWtleQ=="

type testBundle struct {
	st     *store.Store
	schema string
	sink   *capture.Webhooks
	url    string
}

func setup(ctx context.Context, t *testing.T) *testBundle {
	t.Helper()
	st := testfactory.Store(ctx, t, nil)
	// River's tables get a short schema of their own: the notifications' schema has a name
	// longer than River's limit (46 characters). The bench puts them in the run's schema.
	schema := pulsetest.Name("riverpeer_")
	_, err := st.Pool().Exec(ctx, "create schema "+schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = st.Pool().Exec(context.WithoutCancel(ctx), "drop schema "+schema+" cascade") })
	require.NoError(t, riverpeer.Migrate(ctx, st.Pool(), schema))
	sink := capture.NewWebhooks(secret, nil)
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	return &testBundle{st: st, schema: schema, sink: sink, url: srv.URL + "/hook"}
}

// work runs the worker process's loop until every job in River's table is finished.
func (b *testBundle) work(ctx context.Context, t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- riverpeer.Run(ctx, riverpeer.Config{DatabaseURL: b.st.Pool().Config().ConnString(), Schema: b.schema,
			WebhookSecret: secret, MaxWorkers: 4}, nil)
	}()
	require.Eventually(t, func() bool {
		var left int
		err := b.st.Pool().QueryRow(ctx, "select count(*) from "+b.schema+".river_job where state not in ('completed', 'discarded')").Scan(&left)
		return err == nil && left == 0
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestWorkerDeliversEachNotification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(ctx, t)
	var ids []string
	for range 3 {
		n := testfactory.Notification(ctx, t, b.st, &testfactory.NotificationOpts{To: b.url,
			Mutate: func(r *notification.Request) { r.Subject, r.Body = "hello", "world" }})
		ids = append(ids, n.ID)
	}
	// A job whose notification is gone completes without a webhook, as the Celery task does.
	gone := "018f0000-0000-7000-8000-000000000000"
	require.NoError(t, riverpeer.Enqueue(ctx, b.st.Pool(), b.schema, append(ids, gone)))

	b.work(ctx, t)

	total, distinct, invalid := b.sink.Stats()
	require.Equal(t, [3]int{3, 3, 0}, [3]int{total, distinct, invalid}, "webhooks received, distinct, unverified")
	for _, id := range ids {
		require.Equal(t, 1, b.sink.Count(id), id)
		n := testfactory.Get(t, b.st, id)
		require.Equal(t, notification.Delivered, n.Status, id)
		require.Equal(t, 1, n.Attempts, id)
	}
	var completed int
	require.NoError(t, b.st.Pool().QueryRow(ctx, "select count(*) from "+b.schema+".river_job where state = 'completed' and kind = 'pulse.deliver'").Scan(&completed))
	require.Equal(t, 4, completed)
}

func TestWorkerRecordsARefusedWebhookAsFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(ctx, t)
	b.sink.Fail(500)
	n := testfactory.Notification(ctx, t, b.st, &testfactory.NotificationOpts{To: b.url})
	require.NoError(t, riverpeer.Enqueue(ctx, b.st.Pool(), b.schema, []string{n.ID}))

	b.work(ctx, t)

	var status, lastError string
	require.NoError(t, b.st.Pool().QueryRow(ctx, "select status, last_error from notifications where id = $1", n.ID).Scan(&status, &lastError))
	require.Equal(t, "failed", status)
	require.Equal(t, "status 500", lastError)
	var state string
	var attempt int
	require.NoError(t, b.st.Pool().QueryRow(ctx, "select state, attempt from "+b.schema+".river_job").Scan(&state, &attempt))
	require.Equal(t, "completed", state, "the outcome is recorded, not retried by River")
	require.Equal(t, 1, attempt)
}
