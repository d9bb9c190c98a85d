package delivery_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// blockReceiver makes the bundle's receiver signal each request on entered and answer 200
// only once release is closed.
func blockReceiver(t *testing.T, b *testBundle) (entered chan struct{}, release chan struct{}) {
	t.Helper()
	entered, release = make(chan struct{}, 4), make(chan struct{})
	b.respond.Store(func(w http.ResponseWriter) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	})
	return entered, release
}

// dispatchRequest is a whole HTTP/1.1 request carrying a structured dispatch event for id.
func dispatchRequest(t *testing.T, id string) string {
	t.Helper()
	e := event.New()
	e.SetID(pulsetest.Name("1-"))
	e.SetSource("/pulse/stream-source/high")
	e.SetType(notification.TypeDispatch)
	require.NoError(t, e.SetData(event.ApplicationJSON, map[string]string{queue.FieldNotificationID: id,
		queue.FieldChannel: "webhook", queue.FieldEnqueuedAt: "1"}))
	body, err := json.Marshal(e)
	require.NoError(t, err)
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: deliver\r\nContent-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n%s",
		len(body), body)
}

// serve serves h over TCP the way the deliver functions do and returns its address, a
// function that starts the shutdown, and the channel Serve's result arrives on.
func serve(t *testing.T, h http.Handler, shutdown time.Duration) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln := pulsetest.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := config.Server{ReadTimeout: 10 * time.Second, WriteTimeout: time.Minute, ShutdownTimeout: shutdown}
	go func() { done <- ceserver.ServeListener(ctx, ln, cfg, h, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(cancel)
	return ln.Addr().String(), cancel, done
}

// requireDeliveredOnce checks that id was sent once and recorded once, as delivered.
func requireDeliveredOnce(t *testing.T, b *testBundle, id string) {
	t.Helper()
	require.Equal(t, notification.Delivered, b.get(t, id).Status)
	attempts, err := b.store.Attempts(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	require.Equal(t, "delivered", attempts[0].Outcome)
	require.Len(t, b.calls(), 1)
	require.Equal(t, id, b.calls()[0].header.Get("webhook-id"))
}

// TestCallerGoneMidSend: the stream source's connection closes while the webhook is on the
// wire. The send still completes and is recorded once; a later dispatch of the same entry
// (the stream source reclaiming it, having had no answer) finds the notification no longer
// queued and sends nothing.
//
// The guarantee: once an outcome is recorded, a notification is never sent again, since
// every send starts with a claim that needs status queued. What remains is the window in
// which deliver itself dies between the send and the record: cron hands the expired lease
// back to retrying and the notification is sent again, with the same webhook-id (the
// notification id) so the receiver can drop the repeat.
func TestCallerGoneMidSend(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	entered, release := blockReceiver(t, b)
	callerGone := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			<-r.Context().Done()
			close(callerGone)
		}()
		b.handler.ServeHTTP(w, r)
	})
	addr, _, _ := serve(t, h, 5*time.Second)
	id := b.insert(t, nil)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = conn.Write([]byte(dispatchRequest(t, id)))
	require.NoError(t, err)
	<-entered
	require.Equal(t, notification.Sending, b.get(t, id).Status)
	require.NoError(t, conn.Close())
	<-callerGone // the request's context is cancelled: the caller is gone
	close(release)

	require.Eventually(t, func() bool { return b.get(t, id).Status != notification.Sending }, 10*time.Second, 10*time.Millisecond)
	requireDeliveredOnce(t, b, id)

	require.Equal(t, http.StatusAccepted, b.deliver(t, id), "the reclaimed entry is acknowledged")
	requireDeliveredOnce(t, b, id)
}

// TestShutdownWaitsForSends: a shutdown whose HTTP budget runs out while a webhook is on the
// wire still lets the send finish and be recorded before the deliverer closes.
func TestShutdownWaitsForSends(t *testing.T) {
	t.Parallel()
	b := setup(t, options{allowPrivate: true})
	entered, release := blockReceiver(t, b)
	addr, shutdown, served := serve(t, b.handler, 300*time.Millisecond)
	id := b.insert(t, nil)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(dispatchRequest(t, id)))
	require.NoError(t, err)
	<-entered

	// What delivery.Run does on SIGTERM: serve until the budget runs out, then close.
	shutdown()
	require.Error(t, <-served, "the HTTP budget ran out with the send still on the wire")
	closed := make(chan struct{})
	go func() {
		b.deliverer.Close()
		close(closed)
	}()
	close(release)
	<-closed
	requireDeliveredOnce(t, b, id)

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the caller still gets its answer")

	later := b.insert(t, nil)
	require.Equal(t, http.StatusServiceUnavailable, b.deliver(t, later), "a closed deliverer sends the dispatch back")
	require.Equal(t, notification.Queued, b.get(t, later).Status, "and claims nothing")
}
