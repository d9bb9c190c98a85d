package scheduler_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/scheduler"
)

// ping POSTs a binary-mode ping event with data to h and returns the answer.
func ping(t *testing.T, h http.Handler, eventType, data string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(data))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "ping-1")
	req.Header.Set("Ce-Type", eventType)
	req.Header.Set("Ce-Source", "/apis/v1/namespaces/pulse/pingsources/pulse-release")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandlerRunsTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.scheduled(t, 2, b.start.Add(time.Second))
	b.clock.Set(b.start.Add(time.Second))
	var logs pulsetest.SyncBuffer
	h := scheduler.NewHandler(b.scheduler, slog.New(slog.NewJSONHandler(&logs, nil)))

	w := ping(t, h, scheduler.TypePing, `{"job":"release"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var r scheduler.Report
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &r))
	require.Equal(t, "release", r.Job)
	require.Equal(t, map[string]int{"released": 2}, r.Counts)
	require.True(t, r.Complete)

	var line struct {
		Msg    string         `json:"msg"`
		Job    string         `json:"job"`
		Counts map[string]int `json:"counts"`
		CEID   string         `json:"ce_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line), logs.String())
	require.Equal(t, "job done", line.Msg)
	require.Equal(t, "release", line.Job)
	require.Equal(t, map[string]int{"released": 2}, line.Counts)
	require.Equal(t, "ping-1", line.CEID)

	// A tick that finds nothing to do logs at debug only.
	var idle pulsetest.SyncBuffer
	w = ping(t, scheduler.NewHandler(b.scheduler, slog.New(slog.NewJSONHandler(&idle, nil))), scheduler.TypePing, `{"job":"release"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Empty(t, idle.String(), "an idle run logged at info")
	var debug pulsetest.SyncBuffer
	w = ping(t, scheduler.NewHandler(b.scheduler, slog.New(slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		scheduler.TypePing, `{"job":"release"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, debug.String(), `"level":"DEBUG","msg":"job done"`)

	for _, job := range scheduler.Jobs {
		w := ping(t, h, scheduler.TypePing, `{"job":"`+job+`"}`)
		require.Equal(t, http.StatusOK, w.Code, job)
	}
}

func TestHandlerRejectsBadEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := scheduler.NewHandler(b.scheduler, slog.New(slog.DiscardHandler))
	for name, tc := range map[string]struct {
		eventType, data, field string
	}{
		"unknown job":    {scheduler.TypePing, `{"job":"reboot"}`, "data.job"},
		"no job":         {scheduler.TypePing, `{}`, "data.job"},
		"no data":        {scheduler.TypePing, ``, "data"},
		"not an object":  {scheduler.TypePing, `["release"]`, "data"},
		"not a ping":     {"dev.pulse.notification.requested", `{"job":"release"}`, "type"},
		"job not string": {scheduler.TypePing, `{"job":1}`, "data"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := ping(t, h, tc.eventType, tc.data)
			require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			var body ceserver.ErrorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			require.Len(t, body.Fields, 1)
			require.Equal(t, tc.field, body.Fields[0].Field)
			if name == "unknown job" {
				require.Contains(t, body.Fields[0].Message, "reboot")
				require.Contains(t, body.Fields[0].Details, "release, recover, expire, purge, trim")
			}
		})
	}

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, http.StatusNotFound, w.Code)
}

func FuzzJobOf(f *testing.F) {
	f.Add(scheduler.TypePing, "application/json", []byte(`{"job":"release"}`))
	f.Add(scheduler.TypePing, "", []byte(`{"job":"x"}`))
	f.Add("other", "text/plain", []byte(`x`))
	f.Fuzz(func(t *testing.T, eventType, contentType string, data []byte) {
		e := event.New()
		e.SetType(eventType)
		e.SetDataContentType(contentType)
		e.DataEncoded = data
		job, ferr := scheduler.JobOf(e)
		if ferr != nil {
			require.Empty(t, job)
			return
		}
		require.Contains(t, scheduler.Jobs, job)
	})
}

// TestHandlerRedisDown: while Redis is unreachable the jobs that need it answer 503 with
// Retry-After, so the PingSource tries again, never 500.
func TestHandlerRedisDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.scheduled(t, 2, b.start.Add(time.Second))
	b.clock.Set(b.start.Add(10 * time.Minute))
	down := unreachableRedis(t)
	h := scheduler.NewHandler(b.with(func(c *scheduler.Config) { c.Redis = down }), slog.New(slog.DiscardHandler))
	for _, job := range []string{scheduler.JobRelease, scheduler.JobTrim} {
		t.Run(job, func(t *testing.T) {
			w := ping(t, h, scheduler.TypePing, `{"job":"`+job+`"}`)
			require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
			require.Equal(t, "1", w.Header().Get("Retry-After"))
		})
	}
}
