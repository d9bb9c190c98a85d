package streamsource_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

// sentRequest is what a sink received.
type sentRequest struct {
	header http.Header
	body   []byte
	// event is what the deliver function's reader, ceserver.ReadOneEvent, made of it; ok is
	// false when it refused it.
	event event.Event
	ok    bool
}

// capture sends m through source.Send to a sink answering 202 and returns what the sink got.
func capture(t *testing.T, priority string, m queue.Message) sentRequest {
	t.Helper()
	got := make(chan sentRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		ev, ok := ceserver.ReadOneEvent(rec, r, 64<<10, slog.New(slog.DiscardHandler))
		got <- sentRequest{header: r.Header.Clone(), body: body, event: ev, ok: ok}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	source, err := streamsource.New(streamsource.Config{
		Priority: priority, Group: "deliver", Consumer: "c1", Sink: srv.URL + "/", Concurrency: 1,
		SinkTimeout: 5 * time.Second, ReclaimIdle: 10 * time.Second, MaxDeliveries: 1,
	}, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	status, err := source.Send(context.Background(), m)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status)
	return <-got
}

// sdkRequest returns the header and body the CloudEvents SDK writes for ev in binary mode.
func sdkRequest(t *testing.T, ev event.Event) (http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://sink.example/", nil)
	require.NoError(t, err)
	require.NoError(t, cehttp.WriteRequest(binding.WithForceBinary(context.Background()), binding.ToMessage(&ev), req))
	body, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	return req.Header, body
}

// eventHeader returns the lines of h that carry the event: ce-* and Content-Type.
func eventHeader(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Ce-") || k == "Content-Type" {
			out[k] = v
		}
	}
	return out
}

// TestSendIsNewEvent: what a send puts on the wire is what the CloudEvents SDK writes for
// NewEvent's event in binary mode, and both the SDK and the deliver function read back that
// event, whatever the entry's fields hold.
func TestSendIsNewEvent(t *testing.T) {
	t.Parallel()
	odd := map[string]string{
		"not utf-8":        "a\xff\xfeb\xc3",
		"quotes":           `say "hi" \ bye`,
		"controls":         "\x00\x01\b\f\n\r\t\x1f\x7f",
		"html":             "<script>&amp;</script>",
		"separators":       "\u2028\u2029",
		"unicode":          "héllo, 世界 🙂",
		"\xffkey\n":        "odd key",
		queue.FieldChannel: "email",
	}
	with := func(fields map[string]string, notificationID string) map[string]string {
		out := map[string]string{queue.FieldNotificationID: notificationID}
		for k, v := range fields {
			out[k] = v
		}
		return out
	}
	tests := map[string]struct {
		msg      queue.Message
		priority string
		// wantSubject is the subject the deliver function sees.
		wantSubject string
	}{
		"dispatch entry": {
			msg:         queue.Message{ID: "1700000000123-4", Fields: entryFields("0193a5c2-7d4e-7b1a-9f3e-2c4d5e6f7a8b")},
			priority:    "high",
			wantSubject: "0193a5c2-7d4e-7b1a-9f3e-2c4d5e6f7a8b",
		},
		"odd fields": {
			msg:         queue.Message{ID: "1700000000000-0", Fields: with(odd, "n-1")},
			priority:    "low",
			wantSubject: "n-1",
		},
		"notification id with spaces, percent, quotes and unicode": {
			msg:      queue.Message{ID: "1700000000000-1", Fields: with(odd, ` n 1%20"né" `)},
			priority: "high",
		},
		"notification id with a line break": {
			msg:      queue.Message{ID: "1700000000000-2", Fields: with(nil, "n1\r\nCe-Type: forged")},
			priority: "high",
		},
		"notification id not utf-8": {
			msg:      queue.Message{ID: "1700000000000-3", Fields: with(nil, "n\xff")},
			priority: "high",
		},
		"no notification id": {
			msg:      queue.Message{ID: "1700000000000-5", Fields: map[string]string{queue.FieldChannel: "sms"}},
			priority: "high",
		},
		"no fields": {
			msg:      queue.Message{ID: "1700000000999-0", Fields: map[string]string{}},
			priority: "high",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := streamsource.NewEvent(tc.priority, tc.msg)
			require.NoError(t, err)
			got := capture(t, tc.priority, tc.msg)

			sdkHeader, sdkBody := sdkRequest(t, want)
			if diff := cmp.Diff(eventHeader(sdkHeader), eventHeader(got.header)); diff != "" {
				t.Errorf("header (-SDK's +sent):\n%s", diff)
			}
			require.Equal(t, string(sdkBody), string(got.body), "body")

			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(got.body)))
			req.Header = got.header
			decoded, err := cehttp.NewEventFromHTTPRequest(req)
			require.NoError(t, err)
			// DataBase64 says how the SDK would put []byte data in structured mode; binary mode
			// does not carry it.
			opts := cmp.Options{cmpopts.IgnoreUnexported(event.Event{}), cmpopts.IgnoreFields(event.Event{}, "DataBase64")}
			if diff := cmp.Diff(want, *decoded, opts); diff != "" {
				t.Errorf("event the SDK reads (-NewEvent +sent):\n%s", diff)
			}
			require.True(t, got.ok, "the deliver function's reader takes it")
			if diff := cmp.Diff(want, got.event, opts); diff != "" {
				t.Errorf("event ReadOneEvent reads (-NewEvent +sent):\n%s", diff)
			}

			require.Equal(t, tc.wantSubject, got.event.Subject())
			// The fields as encoding/json carries them: bytes not UTF-8 become U+FFFD.
			fields, err := json.Marshal(tc.msg.Fields)
			require.NoError(t, err)
			var wantData, data map[string]string
			require.NoError(t, json.Unmarshal(fields, &wantData))
			require.NoError(t, got.event.DataAs(&data))
			if diff := cmp.Diff(wantData, data); diff != "" {
				t.Errorf("data, which carries the notification id, subject or not (-want +got):\n%s", diff)
			}
		})
	}
}
