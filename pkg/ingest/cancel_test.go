package ingest_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// cancelBundle is the cancellation tests' bundle; named apart from the other ingest tests'.
type cancelBundle struct {
	now     time.Time
	store   *store.Store
	handler *ingest.Handler
}

func setupCancel(t *testing.T) *cancelBundle {
	t.Helper()
	ctx := context.Background()
	b := &cancelBundle{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	b.store = testfactory.Store(ctx, t, &testfactory.StoreOpts{Now: func() time.Time { return b.now }})

	redisURL, prefix := pulsetest.Redis(t)
	rdb := pulsetest.RedisClient(t, redisURL)
	logger := slog.New(slog.DiscardHandler)
	committer := ingest.NewCommitter(b.store, queue.New(rdb, queue.NewKeys(prefix), nil), logger, 100, 1)
	committer.Start()
	t.Cleanup(committer.Stop)
	cfg := config.Ingest{Auth: "token", Tokens: config.Tokens{"tok-a": {"urn:a"}, "tok-b": {"urn:b"}},
		MaxRequestBytes: 1 << 20, MaxBatch: 10, Retry: config.Retry{Schedule: []time.Duration{time.Second}}}
	b.handler = ingest.NewHandler(cfg, b.store, committer, logger)
	return b
}

// notification stores a webhook notification requested by (source, id) and moves it to status.
func (b *cancelBundle) notification(t *testing.T, source, id string, status notification.Status) string {
	t.Helper()
	return testfactory.Notification(context.Background(), t, b.store,
		&testfactory.NotificationOpts{Source: source, EventID: id, Status: status}).ID
}

func (b *cancelBundle) do(t *testing.T, method, target, token string) (*httptest.ResponseRecorder, ingest.CancelAnswer) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	b.handler.ServeHTTP(w, req)
	var a ingest.CancelAnswer
	if w.Code == http.StatusOK || w.Code == http.StatusConflict {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a), w.Body.String())
	}
	return w, a
}

// cancelEvent POSTs a dev.pulse.notification.cancel event for (source, id).
func (b *cancelBundle) cancelEvent(t *testing.T, source, id, token string) (*httptest.ResponseRecorder, ingest.CancelAnswer) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(""))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", source)
	req.Header.Set("Ce-Type", notification.TypeCancel)
	w := httptest.NewRecorder()
	b.handler.ServeHTTP(w, req)
	var a ingest.CancelAnswer
	if w.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a), w.Body.String())
	}
	return w, a
}

func (b *cancelBundle) status(t *testing.T, id string) notification.Status {
	t.Helper()
	return testfactory.Get(t, b.store, id).Status
}

func TestCancelByID(t *testing.T) {
	t.Parallel()
	b := setupCancel(t)
	for _, status := range []notification.Status{notification.Scheduled, notification.Queued, notification.Retrying} {
		id := b.notification(t, "urn:a", string(status), status)
		w, a := b.do(t, http.MethodDelete, "/v1/notifications/"+id, "tok-a")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, ingest.CancelAnswer{ID: id, Source: "urn:a", EventID: string(status), Status: notification.Cancelled,
			Cancelled: true, Message: "cancelled"}, a)
		require.Equal(t, notification.Cancelled, b.status(t, id))
		n, err := b.store.Get(context.Background(), id)
		require.NoError(t, err)
		require.True(t, n.CancelledAt.Equal(b.now))

		// Cancelled is final: a second DELETE changes nothing and says so.
		w, a = b.do(t, http.MethodDelete, "/v1/notifications/"+id, "tok-a")
		require.Equal(t, http.StatusConflict, w.Code)
		require.False(t, a.Cancelled)
		require.Equal(t, notification.Cancelled, a.Status)
	}
}

func TestCancelFinishedOrSending(t *testing.T) {
	t.Parallel()
	b := setupCancel(t)
	for status, want := range map[notification.Status]struct{ message, error string }{
		notification.Delivered: {message: "already finished (delivered)", error: "can no longer be cancelled"},
		notification.Sending:   {message: "being sent right now"},
	} {
		t.Run(string(status), func(t *testing.T) {
			id := b.notification(t, "urn:a", string(status), status)
			w, a := b.do(t, http.MethodDelete, "/v1/notifications/"+id, "tok-a")
			require.Equal(t, http.StatusConflict, w.Code)
			require.Equal(t, status, a.Status, "the body holds its state")
			require.False(t, a.Cancelled)
			require.Contains(t, a.Message, want.message)
			require.Contains(t, a.Error, want.error)
			require.Equal(t, status, b.status(t, id), "nothing changes")
		})
	}
}

func TestCancelBySourceAndID(t *testing.T) {
	t.Parallel()
	b := setupCancel(t)
	id := b.notification(t, "urn:a", "order-1", notification.Queued)
	target := "/v1/notifications?" + url.Values{"source": {"urn:a"}, "id": {"order-1"}}.Encode()
	w, a := b.do(t, http.MethodDelete, target, "tok-a")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.True(t, a.Cancelled)
	require.Equal(t, id, a.ID)

	w, _ = b.do(t, http.MethodDelete, "/v1/notifications?source=urn:a", "tok-a")
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), `"field":"id"`)
	w, _ = b.do(t, http.MethodDelete, "/v1/notifications?"+url.Values{"source": {"urn:a"}, "id": {"nope"}}.Encode(), "tok-a")
	require.Equal(t, http.StatusNotFound, w.Code)
}

func TestCancelAuth(t *testing.T) {
	t.Parallel()
	b := setupCancel(t)
	id := b.notification(t, "urn:a", "1", notification.Queued)
	for name, tc := range map[string]struct {
		target, token string
		want          int
	}{
		"no token":    {"/v1/notifications/" + id, "", http.StatusUnauthorized},
		"wrong token": {"/v1/notifications/" + id, "wrong", http.StatusUnauthorized},
		// Another source's notification is not even said to exist.
		"another source's token":           {"/v1/notifications/" + id, "tok-b", http.StatusNotFound},
		"another source's token, by event": {"/v1/notifications?" + url.Values{"source": {"urn:a"}, "id": {"1"}}.Encode(), "tok-b", http.StatusNotFound},
	} {
		w, _ := b.do(t, http.MethodDelete, tc.target, tc.token)
		require.Equal(t, tc.want, w.Code, name)
	}
	require.Equal(t, notification.Queued, b.status(t, id))
}

func TestCancelEvent(t *testing.T) {
	t.Parallel()
	b := setupCancel(t)
	id := b.notification(t, "urn:a", "order-1", notification.Scheduled)

	w, a := b.cancelEvent(t, "urn:a", "order-1", "tok-a")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, ingest.CancelAnswer{ID: id, Source: "urn:a", EventID: "order-1", Status: notification.Cancelled,
		Cancelled: true, Message: "cancelled"}, a)
	require.Equal(t, notification.Cancelled, b.status(t, id))

	// Knative retries 409, and retrying cannot change a finished notification: 200 either way.
	w, a = b.cancelEvent(t, "urn:a", "order-1", "tok-a")
	require.Equal(t, http.StatusOK, w.Code)
	require.False(t, a.Cancelled)
	require.Equal(t, notification.Cancelled, a.Status)
	require.Contains(t, a.Message, "already finished")

	delivered := b.notification(t, "urn:a", "order-2", notification.Delivered)
	w, a = b.cancelEvent(t, "urn:a", "order-2", "tok-a")
	require.Equal(t, http.StatusOK, w.Code)
	require.False(t, a.Cancelled)
	require.Equal(t, notification.Delivered, a.Status)
	require.Equal(t, notification.Delivered, b.status(t, delivered))

	sending := b.notification(t, "urn:a", "order-3", notification.Sending)
	w, a = b.cancelEvent(t, "urn:a", "order-3", "tok-a")
	require.Equal(t, http.StatusOK, w.Code)
	require.False(t, a.Cancelled)
	require.Contains(t, a.Message, "being sent right now")
	require.Equal(t, notification.Sending, b.status(t, sending))

	// A cancel that overtook its request gets 404, which Knative retries.
	w, _ = b.cancelEvent(t, "urn:a", "order-9", "tok-a")
	require.Equal(t, http.StatusNotFound, w.Code)

	w, _ = b.cancelEvent(t, "urn:a", "order-1", "tok-b")
	require.Equal(t, http.StatusForbidden, w.Code)
}

func TestCancelBadKey(t *testing.T) {
	t.Parallel()
	b := setupCancel(t)
	w, _ := b.do(t, http.MethodDelete, "/v1/notifications?"+url.Values{"source": {"urn:a"}, "id": {"a\x00b"}}.Encode(), "tok-a")
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"field":"id"`)
	w, _ = b.cancelEvent(t, "urn:a", strings.Repeat("x", 10000), "tok-a")
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
}
