package ceserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
)

// faultsMaxBytes is the body limit of the server TestClientFaults talks to.
const faultsMaxBytes = 4 << 10

// serveEvents serves ReadEvents over TCP with readTimeout and returns the address. A request
// that reads answers 202 with the number of events.
func serveEvents(t *testing.T, readTimeout time.Duration) string {
	t.Helper()
	ln := pulsetest.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := slog.New(slog.DiscardHandler)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		events, _, err := ceserver.ReadEvents(r, faultsMaxBytes, 10)
		if err != nil {
			ceserver.WriteError(w, logger, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, len(events))
	})
	cfg := config.Server{ReadTimeout: readTimeout, WriteTimeout: time.Minute, ShutdownTimeout: time.Second}
	go func() { done <- ceserver.ServeListener(ctx, ln, cfg, h, logger) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// TestClientFaults sends requests byte by byte over a raw connection, to control what the
// server sees and when: each fault of the client gets its 4xx, at once, and never a 5xx.
func TestClientFaults(t *testing.T) {
	t.Parallel()
	event := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"urn:s","type":"t","data":{"n":1}}`
	}
	batch := "[" + event("1") + "," + event("2") + "]"
	for name, tc := range map[string]struct {
		readTimeout time.Duration
		// head is the request up to and including the blank line; body is what follows.
		head, body string
		// closeWrite ends the client's side after body, so the server sees the end of it.
		closeWrite bool
		want       int
		wantBody   string
	}{
		"body stops before its declared length": {
			head: "Content-Type: application/cloudevents+json\r\nContent-Length: 500\r\n",
			body: event("1")[:40], closeWrite: true, want: http.StatusBadRequest, wantBody: "ended early",
		},
		"chunked body stops mid-chunk": {
			head: "Content-Type: application/cloudevents+json\r\nTransfer-Encoding: chunked\r\n",
			body: "64\r\n" + event("1")[:30], closeWrite: true, want: http.StatusBadRequest, wantBody: "ended early",
		},
		"body sent too slowly": {
			readTimeout: 300 * time.Millisecond,
			head:        "Content-Type: application/cloudevents+json\r\nContent-Length: 500\r\n",
			body:        event("1")[:40], want: http.StatusRequestTimeout, wantBody: "not sent in time",
		},
		// The read timeout is long and no body is sent: only an answer that does not read
		// the body can come back before the test gives up.
		"declared length over the limit": {
			readTimeout: time.Minute,
			head:        "Content-Type: application/cloudevents+json\r\nContent-Length: " + strconv.Itoa(faultsMaxBytes+1) + "\r\n",
			want:        http.StatusRequestEntityTooLarge, wantBody: "too large",
		},
		"declared length far over the limit": {
			readTimeout: time.Minute,
			head:        "Content-Type: application/cloudevents+json\r\nContent-Length: 10000000000\r\n",
			want:        http.StatusRequestEntityTooLarge, wantBody: "too large",
		},
		"chunked body over the limit": {
			head: "Content-Type: application/cloudevents+json\r\nTransfer-Encoding: chunked\r\n",
			body: fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", faultsMaxBytes+10, strings.Repeat("x", faultsMaxBytes+10)),
			want: http.StatusRequestEntityTooLarge, wantBody: "too large",
		},
		"batch with a charset": {
			head: "Content-Type: application/cloudevents-batch+json; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(batch)) + "\r\n",
			body: batch, want: http.StatusAccepted, wantBody: "2",
		},
		"batch with a charset, upper case": {
			head: "Content-Type: Application/CloudEvents-Batch+JSON;charset=UTF-8\r\nContent-Length: " + strconv.Itoa(len(batch)) + "\r\n",
			body: batch, want: http.StatusAccepted, wantBody: "2",
		},
		"structured event with a charset": {
			head: "Content-Type: application/cloudevents+json; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(event("1"))) + "\r\n",
			body: event("1"), want: http.StatusAccepted, wantBody: "1",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := serveEvents(t, orDefault(tc.readTimeout, 5*time.Second))
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
			_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: pulse\r\n"+tc.head+"\r\n"+tc.body)
			require.NoError(t, err)
			if tc.closeWrite {
				require.NoError(t, conn.(*net.TCPConn).CloseWrite())
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "an answer before the test's deadline")
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.want, resp.StatusCode, string(body))
			require.Contains(t, string(body), tc.wantBody)
		})
	}
}

func orDefault(d, otherwise time.Duration) time.Duration {
	if d == 0 {
		return otherwise
	}
	return d
}
