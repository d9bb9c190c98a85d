package loadgen_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/bench/loadgen"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// fakeIngest answers like ingest: 202, or 200 for an id seen before; a batch gets a long,
// chunked answer.
type fakeIngest struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") == "application/cloudevents-batch+json" {
		var events []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &events); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		for range events {
			io.WriteString(w, strings.Repeat(" ", 100)+`{"duplicate":false}`)
		}
		return
	}
	if !json.Valid(body) || r.Header.Get("Ce-Specversion") != "1.0" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	dup := f.seen[r.Header.Get("Ce-Id")]
	f.seen[r.Header.Get("Ce-Id")] = true
	f.mu.Unlock()
	if dup {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"duplicate":true}`)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"duplicate":false}`)
}

func TestSinglesAndBatches(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeIngest{seen: map[string]bool{}})
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := loadgen.NewClient(addr, 4)
	t.Cleanup(c.Close)
	target := loadgen.Target{Addr: addr, Source: "urn:test", IDPrefix: "e-", Sink: "http://127.0.0.1:9/h", Priority: "high"}
	ctx := context.Background()

	r := loadgen.Singles(ctx, target, c, 0, 100, 4)
	require.Empty(t, r.FirstError)
	require.Equal(t, 100, r.Accepted)
	require.Len(t, r.Latencies, 100)

	r = loadgen.Paced(ctx, target, c, 90, 20, 2000, 4)
	require.Empty(t, r.FirstError)
	require.Equal(t, 10, r.Duplicates, "ids 90..99 were sent before")
	require.Equal(t, 10, r.Accepted)

	r = loadgen.Batches(ctx, target, c, 0, 250, 100, 2)
	require.Empty(t, r.FirstError)
	require.Equal(t, 3, r.Requests)
	require.Equal(t, 250, r.Accepted)
}

// TestRequestsAreValid: what the load generator asks for, single or in a batch, is a request
// ingest accepts, for each channel it sends on.
func TestRequestsAreValid(t *testing.T) {
	t.Parallel()
	tests := map[string]loadgen.Target{
		"webhook": {Sink: "http://127.0.0.1:9/h"},
		"email":   {Channel: "email", Sink: "bench@example.com"},
	}
	for name, target := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var datas []json.RawMessage
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				if r.Header.Get("Content-Type") != "application/cloudevents-batch+json" {
					datas = append(datas, body)
					w.WriteHeader(http.StatusAccepted)
					return
				}
				var events []struct{ Data json.RawMessage }
				require.NoError(t, json.Unmarshal(body, &events))
				for _, e := range events {
					datas = append(datas, e.Data)
				}
				w.WriteHeader(http.StatusAccepted)
			}))
			t.Cleanup(srv.Close)
			target.Addr, target.Source, target.IDPrefix, target.Priority = strings.TrimPrefix(srv.URL, "http://"), "urn:test", "e-", "low"
			c := loadgen.NewClient(target.Addr, 1)
			t.Cleanup(c.Close)
			require.Empty(t, loadgen.Singles(context.Background(), target, c, 0, 2, 1).FirstError)
			require.Empty(t, loadgen.Batches(context.Background(), target, c, 2, 2, 2, 1).FirstError)

			require.Len(t, datas, 4)
			for _, d := range datas {
				req, ferr := notification.ParseRequest(d, time.Now())
				require.Nil(t, ferr, "%s", d)
				require.Equal(t, notification.Channel(name), req.Channel)
				require.Equal(t, target.Sink, req.To)
			}
		})
	}
}
