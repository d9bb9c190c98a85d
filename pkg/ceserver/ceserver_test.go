package ceserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err  error
		want int
	}{
		"field error":      {fmt.Errorf("parse: %w", fielderr.Missing("data.to")), http.StatusBadRequest},
		"too large":        {fmt.Errorf("%w: limit", ceserver.ErrTooLarge), http.StatusRequestEntityTooLarge},
		"body ended early": {fmt.Errorf("read: %w", ceserver.ErrIncompleteBody), http.StatusBadRequest},
		"body too slow":    {fmt.Errorf("read: %w", ceserver.ErrBodyTimeout), http.StatusRequestTimeout},
		"unauthorized":     {ceserver.ErrUnauthorized, http.StatusUnauthorized},
		"forbidden":        {fmt.Errorf("%w: source x", ceserver.ErrForbidden), http.StatusForbidden},
		"not found":        {notification.ErrNotFound, http.StatusNotFound},
		"not cancellable":  {notification.ErrNotCancellable, http.StatusConflict},
		"unavailable":      {fmt.Errorf("insert: %w", store.ErrUnavailable), http.StatusServiceUnavailable},
		"anything else":    {errors.New("boom"), http.StatusInternalServerError},
		"redis down":       {fmt.Errorf("trim: %w", queue.Unavailable(errors.New("dial tcp: connection refused"))), http.StatusServiceUnavailable},
		"wrapped database": {fmt.Errorf("commit: %w: %w", store.ErrUnavailable, errors.New("conn reset")), http.StatusServiceUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, ceserver.Status(tc.err))
		})
	}
}

func TestWriteErrorHidesInternalErrors(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	ceserver.WriteError(rec, slog.New(slog.NewTextHandler(io.Discard, nil)), errors.New("password=hunter2"))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.NotContains(t, rec.Body.String(), "hunter2")
}

func TestReadEventsBatchLimit(t *testing.T) {
	t.Parallel()
	event := `{"specversion":"1.0","id":"1","source":"s","type":"t"}`
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("["+event+","+event+","+event+"]"))
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	_, _, err := ceserver.ReadEvents(req, 1<<20, 2)
	require.Equal(t, http.StatusBadRequest, ceserver.Status(err))
	require.ErrorContains(t, err, "at most 2")
}

// TestReadEventsBatch reads a batch whose length the client declared, and refuses with 400
// a batch that is not one JSON array of events, and a body longer than allowed.
func TestReadEventsBatch(t *testing.T) {
	t.Parallel()
	event := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"s","type":"t","data":{"n":` + id + `}}`
	}
	read := func(body string, maxBytes int64) ([]string, error) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		events, batch, err := ceserver.ReadEvents(req, maxBytes, 10)
		if err == nil {
			require.True(t, batch)
		}
		var out []string
		for _, e := range events {
			out = append(out, e.ID()+"="+string(e.Data()))
		}
		return out, err
	}

	got, err := read("["+event("1")+", "+event("2")+"]", 1<<20)
	require.NoError(t, err)
	require.Equal(t, []string{`1={"n":1}`, `2={"n":2}`}, got)

	for _, body := range []string{"[" + event("1") + "] trailing", "[" + event("1"), `{"specversion":"1.0"}`, "[1]"} {
		_, err := read(body, 1<<20)
		require.Equal(t, http.StatusBadRequest, ceserver.Status(err), "%s: %v", body, err)
	}

	// A body past the buffer set aside for its declared length is read whole all the same.
	large := `{"specversion":"1.0","id":"L","source":"s","type":"t","data":"` + strings.Repeat("x", 400<<10) + `"}`
	got, err = read("["+large+","+large+"]", 4<<20)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, `L="`+strings.Repeat("x", 400<<10)+`"`, got[1])

	body := "[" + event("1") + "]"
	_, err = read(body, int64(len(body)-1))
	require.ErrorIs(t, err, ceserver.ErrTooLarge)
	require.Equal(t, http.StatusRequestEntityTooLarge, ceserver.Status(err))
}

// TestServeDrains serves, answers the probes, and on cancel fails readiness while it drains,
// then returns.
func TestServeDrains(t *testing.T) {
	t.Parallel()
	ln := pulsetest.Listen(t)
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := config.Server{ReadTimeout: time.Second, WriteTimeout: time.Second, ShutdownTimeout: 3 * time.Second}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	go func() {
		done <- ceserver.ServeListener(ctx, ln, cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()

	probe := func(path string, header ...string) (int, http.Header) {
		req, err := http.NewRequest(http.MethodGet, url+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	get := func(path string, header ...string) int {
		code, _ := probe(path, header...)
		return code
	}
	kubelet := []string{"User-Agent", "kube-probe/1.33"}
	require.Eventually(t, func() bool { return get(ceserver.ReadyPath) == http.StatusOK }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, http.StatusOK, get(ceserver.LivePath))
	require.Equal(t, http.StatusTeapot, get("/anything"))
	require.Equal(t, http.StatusOK, get("/anything", kubelet...), "the kubelet's probe is answered on any path")
	code, header := probe("/", "K-Network-Probe", "probe", "K-Network-Hash", "abc")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "abc", header.Get("K-Network-Hash"), "Knative's probe gets its hash back")
	require.Equal(t, http.StatusBadRequest, get("/", "K-Network-Probe", "probe"), "a Knative probe without its hash")

	cancel()
	require.Eventually(t, func() bool { return get(ceserver.ReadyPath) == http.StatusServiceUnavailable }, 5*time.Second, 10*time.Millisecond,
		"readiness fails while draining")
	require.Equal(t, http.StatusServiceUnavailable, get("/", kubelet...), "the kubelet's probe fails while draining")
	require.Equal(t, http.StatusServiceUnavailable, get("/", "K-Network-Probe", "probe", "K-Network-Hash", "abc"))
	require.Equal(t, http.StatusTeapot, get("/anything"), "requests still on their way are served while draining")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after draining")
	}
}
