package streamsource_test

import (
	"context"
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
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

const (
	waitFor = 15 * time.Second
	tick    = 10 * time.Millisecond
)

type testBundle struct {
	client *redis.Client
	keys   queue.Keys
	cfg    streamsource.Config
	// logs holds what the sources started by the test logged.
	logs *pulsetest.SyncBuffer
}

// setup returns a client of the shared test Redis and a source configuration of the test's
// own, with short times: a failed entry is claimed again after 300ms.
func setup(t *testing.T) *testBundle {
	t.Helper()
	url, prefix := pulsetest.Redis(t)
	return setupWith(t, url, prefix)
}

// setupWith is setup with the Redis at url and the key prefix prefix.
func setupWith(t *testing.T, url, prefix string) *testBundle {
	t.Helper()
	return &testBundle{
		client: pulsetest.RedisClient(t, url),
		keys:   queue.NewKeys(prefix),
		cfg: streamsource.Config{
			Prefix:          prefix,
			Priority:        "high",
			Group:           "deliver",
			Consumer:        "c1",
			Concurrency:     4,
			SinkTimeout:     200 * time.Millisecond,
			ReclaimIdle:     300 * time.Millisecond,
			MaxDeliveries:   10,
			ShutdownTimeout: 10 * time.Second,
		},
		logs: &pulsetest.SyncBuffer{},
	}
}

// add appends a dispatch entry for notificationID to the high stream and returns its id.
func (b *testBundle) add(t *testing.T, notificationID string) string {
	t.Helper()
	id, err := b.client.XAdd(context.Background(), &redis.XAddArgs{
		Stream: b.keys.Stream("high"),
		Values: entryFields(notificationID),
	}).Result()
	require.NoError(t, err)
	return id
}

func entryFields(notificationID string) map[string]string {
	return map[string]string{
		queue.FieldNotificationID: notificationID,
		queue.FieldChannel:        "email",
		queue.FieldEnqueuedAt:     "1700000000000",
	}
}

// running is a source running in the background.
type running struct {
	cancel context.CancelFunc
	wait   func() error
}

// stop cancels the source's context and waits for Run to return.
func (r running) stop() error {
	r.cancel()
	return r.wait()
}

// start runs a source with cfg in the background until the test ends or it is stopped; Run
// must return nil.
func (b *testBundle) start(t *testing.T, cfg streamsource.Config) running {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), b.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	source, err := streamsource.New(cfg, b.client, logger)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- source.Run(ctx) }()
	r := running{cancel: cancel, wait: sync.OnceValue(func() error { return <-done })}
	t.Cleanup(func() { require.NoError(t, r.stop()) })
	return r
}

// pending returns how many entries of the high stream the group holds unacknowledged, or
// -1 while the group does not exist.
// eventuallyDeadLettered waits until the high stream's dead-letter stream holds an entry and
// returns its entries.
func (b *testBundle) eventuallyDeadLettered(t *testing.T) []redis.XMessage {
	t.Helper()
	var dead []redis.XMessage
	require.Eventually(t, func() bool {
		var err error
		dead, err = b.client.XRange(context.Background(), b.keys.DeadLetter("high"), "-", "+").Result()
		require.NoError(t, err)
		return len(dead) > 0
	}, waitFor, tick)
	return dead
}

func (b *testBundle) pending(t *testing.T) int64 {
	t.Helper()
	p, err := b.client.XPending(context.Background(), b.keys.Stream("high"), "deliver").Result()
	if err != nil {
		t.Logf("count pending entries: %v", err)
		return -1
	}
	return p.Count
}

// sink is an HTTP sink that decodes each request as a CloudEvent and answers with the status
// its answer function chooses.
type sink struct {
	srv *httptest.Server

	inFlight, maxInFlight atomic.Int64

	mu       sync.Mutex
	requests []request
	attempts map[string]int
}

type request struct {
	header http.Header
	event  event.Event
	status int
}

// answerFunc chooses the status of the attempt-th request for ev; it may block.
type answerFunc func(r *http.Request, ev event.Event, attempt int) int

func newSink(t *testing.T, answer answerFunc) *sink {
	t.Helper()
	s := &sink{attempts: map[string]int{}}
	s.srv = httptest.NewUnstartedServer(s.handler(t, answer))
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) handler(t *testing.T, answer answerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		ev, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			t.Errorf("decode event: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.attempts[ev.ID()]++
		attempt := s.attempts[ev.ID()]
		s.mu.Unlock()
		status := answer(r, *ev, attempt)
		s.mu.Lock()
		s.requests = append(s.requests, request{header: r.Header.Clone(), event: *ev, status: status})
		s.mu.Unlock()
		w.WriteHeader(status)
	})
}

// URL returns the sink's address.
func (s *sink) URL() string { return s.srv.URL }

// delivered returns the ids answered 2xx, with how many times each was.
func (s *sink) delivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, r := range s.requests {
		if r.status/100 == 2 {
			out[r.event.ID()]++
		}
	}
	return out
}

func (s *sink) all() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

func (s *sink) attemptsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

// withSink starts a sink that answers with answer and returns it, with the bundle's
// configuration pointed at it.
func (b *testBundle) withSink(t *testing.T, answer answerFunc) (*sink, streamsource.Config) {
	t.Helper()
	s := newSink(t, answer)
	cfg := b.cfg
	cfg.Sink = s.URL()
	return s, cfg
}

func answer(status int) answerFunc {
	return func(*http.Request, event.Event, int) int { return status }
}

// eventuallyDelivered waits until the sink answered 2xx for each of ids and the group holds
// nothing pending.
func (b *testBundle) eventuallyDelivered(t *testing.T, s *sink, ids ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := s.delivered()
		for _, id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return b.pending(t) == 0
	}, waitFor, tick)
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, cfg := b.withSink(t, answer(http.StatusAccepted))
	id1 := b.add(t, "n1")
	b.start(t, cfg)
	id2 := b.add(t, "n2")

	b.eventuallyDelivered(t, s, id1, id2)
	require.Equal(t, map[string]int{id1: 1, id2: 1}, s.delivered(), "each entry is sent once")

	for _, r := range s.all() {
		ev := r.event
		require.Equal(t, notification.TypeDispatch, ev.Type())
		require.Equal(t, "/pulse/stream-source/high", ev.Source())
		require.Equal(t, "high", ev.Extensions()[streamsource.PriorityExtension])
		require.Equal(t, event.ApplicationJSON, ev.DataContentType())
		require.Equal(t, ev.ID(), r.header.Get("Ce-Id"), "binary mode")
		require.Equal(t, event.ApplicationJSON, r.header.Get("Content-Type"))
		var data map[string]string
		require.NoError(t, ev.DataAs(&data))
		want := map[string]string{id1: "n1", id2: "n2"}[ev.ID()]
		if diff := cmp.Diff(entryFields(want), data); diff != "" {
			t.Errorf("data of %s (-want +got):\n%s", ev.ID(), diff)
		}
		require.Equal(t, want, ev.Subject())
	}
}

func TestSinkErrorLeavesEntryPending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, cfg := b.withSink(t, func(_ *http.Request, _ event.Event, attempt int) int {
		if attempt == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	b.start(t, cfg)
	id := b.add(t, "n1")

	b.eventuallyDelivered(t, s, id)
	// The same stream id came back: the entry stayed pending after the 500 and was claimed.
	require.Equal(t, 2, s.attemptsOf(id))
}

func TestSinkDownThenUp(t *testing.T) {
	t.Parallel()
	t.Run("answering 503", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var down atomic.Bool
		down.Store(true)
		s, cfg := b.withSink(t, func(*http.Request, event.Event, int) int {
			if down.Load() {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		var ids []string
		for range 5 {
			ids = append(ids, b.add(t, pulsetest.Name("n")))
		}
		b.start(t, cfg)
		require.Eventually(t, func() bool { return len(s.all()) > 0 }, waitFor, tick)
		ids = append(ids, b.add(t, "n-during-outage"))

		down.Store(false)
		b.eventuallyDelivered(t, s, ids...)
	})
	t.Run("not listening", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		addr := pulsetest.FreeAddr(t)
		cfg := b.cfg
		cfg.Sink = "http://" + addr
		var ids []string
		for range 5 {
			ids = append(ids, b.add(t, pulsetest.Name("n")))
		}
		b.start(t, cfg)
		// Sends fail: what the source read stays pending.
		require.Eventually(t, func() bool { return b.pending(t) > 0 }, waitFor, tick)

		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		s := &sink{attempts: map[string]int{}}
		s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s.handler(t, answer(http.StatusOK))}}
		s.srv.Start()
		t.Cleanup(s.srv.Close)
		b.eventuallyDelivered(t, s, ids...)
	})
}

func TestGroupLost(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, b *testBundle){
		"group destroyed": func(t *testing.T, b *testBundle) {
			require.NoError(t, b.client.XGroupDestroy(context.Background(), b.keys.Stream("high"), "deliver").Err())
		},
		"stream deleted": func(t *testing.T, b *testBundle) {
			require.NoError(t, b.client.Del(context.Background(), b.keys.Stream("high")).Err())
		},
	}
	for name, lose := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s, cfg := b.withSink(t, answer(http.StatusOK))
			b.start(t, cfg)
			id := b.add(t, "n1")
			b.eventuallyDelivered(t, s, id)

			lose(t, b)
			ids := []string{b.add(t, "n2"), b.add(t, "n3")}
			b.eventuallyDelivered(t, s, ids...)
			groups, err := b.client.XInfoGroups(context.Background(), b.keys.Stream("high")).Result()
			require.NoError(t, err)
			require.Len(t, groups, 1)
		})
	}
}

// TestDeadLetter: an entry the sink keeps failing is given up on after MaxDeliveries, and one
// it refuses at once; either goes to the dead-letter stream with what it needs to be redriven,
// and the original is acknowledged.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		// The sink answers status to every send; the entry is sent deliveries times (why says
		// why), at most maxDeliveries, then dead-lettered with reason.
		status, deliveries int
		maxDeliveries      int64
		reason, why        string
	}{
		"sink keeps failing": {status: http.StatusInternalServerError, deliveries: 3, maxDeliveries: 3,
			reason: "sink answered 500", why: "sent MaxDeliveries times, then given up on"},
		"sink refuses the event": {status: http.StatusBadRequest, deliveries: 1, maxDeliveries: 5,
			reason: "refused the event with 400", why: "an event the sink refuses is not offered again"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s, cfg := b.withSink(t, answer(tc.status))
			cfg.MaxDeliveries = tc.maxDeliveries
			b.start(t, cfg)
			id := b.add(t, "n1")

			dead := b.eventuallyDeadLettered(t)
			require.Len(t, dead, 1)
			got := dead[0].Values
			require.Equal(t, "n1", got[queue.FieldNotificationID])
			require.Equal(t, "email", got[queue.FieldChannel])
			require.Equal(t, id, got[queue.FieldOriginalID])
			require.Equal(t, strconv.Itoa(tc.deliveries), got[queue.FieldDeliveries])
			require.Contains(t, got[queue.FieldReason], tc.reason)
			_, err := time.Parse(time.RFC3339Nano, got[queue.FieldFailedAt].(string))
			require.NoError(t, err)

			require.Equal(t, int64(0), b.pending(t), "the original is acknowledged")
			require.Equal(t, tc.deliveries, s.attemptsOf(id), tc.why)
		})
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	s, cfg := b.withSink(t, func(r *http.Request, _ event.Event, _ int) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	cfg.Concurrency = 3
	// Requests are held until release: keep them from timing out and being claimed again.
	cfg.SinkTimeout = 10 * time.Second
	cfg.ReclaimIdle = 20 * time.Second
	var ids []string
	for range 20 {
		ids = append(ids, b.add(t, pulsetest.Name("n")))
	}
	b.start(t, cfg)

	require.Eventually(t, func() bool { return s.inFlight.Load() >= 3 }, waitFor, tick)
	close(release)
	b.eventuallyDelivered(t, s, ids...)
	require.Equal(t, int64(3), s.maxInFlight.Load())
	require.Len(t, s.all(), 20, "no entry sent twice")
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arrived, release := make(chan string, 1), make(chan struct{})
	s, cfg := b.withSink(t, func(_ *http.Request, ev event.Event, _ int) int {
		arrived <- ev.ID()
		<-release
		return http.StatusOK
	})
	cfg.SinkTimeout = 10 * time.Second
	cfg.ReclaimIdle = 20 * time.Second
	src := b.start(t, cfg)
	id := b.add(t, "n1")
	require.Equal(t, id, <-arrived)

	src.cancel()
	close(release)
	require.NoError(t, src.wait())
	// Run returned only after the send finished and was acknowledged.
	require.Equal(t, int64(0), b.pending(t))
	require.Equal(t, map[string]int{id: 1}, s.delivered())
	groups, err := b.client.XInfoGroups(context.Background(), b.keys.Stream("high")).Result()
	require.NoError(t, err)
	require.Len(t, groups, 1, "the group survives shutdown")
}

// ackHold holds the XACKs of a Redis client until release is closed, and counts the
// XPENDINGs it sends.
type ackHold struct {
	release  chan struct{}
	pendings atomic.Int64
}

// holdAcks adds an ackHold to client.
func holdAcks(client *redis.Client) *ackHold {
	h := &ackHold{release: make(chan struct{})}
	client.AddHook(h)
	return h
}

func (h *ackHold) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *ackHold) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *ackHold) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		switch cmd.Name() {
		case "xack":
			select {
			case <-h.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		case "xpending":
			h.pendings.Add(1)
		}
		return next(ctx, cmd)
	}
}

// TestSlotFreedBeforeAck: a slot is free again once the sink answered, while the entry's XACK
// is still on its way; until then the entry is not reclaimed by its own source, and shutdown
// waits for the XACK.
func TestSlotFreedBeforeAck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	s, cfg := b.withSink(t, answer(http.StatusOK))
	cfg.Concurrency = 1
	first, second := b.add(t, "n1"), b.add(t, "n2")
	// The source's own client, whose XACKs are held.
	sb := *b
	sb.client = redis.NewClient(b.client.Options())
	t.Cleanup(func() { _ = sb.client.Close() })
	hold := holdAcks(sb.client)
	src := sb.start(t, cfg)

	// One slot, and the second entry reached the sink: the first's slot was freed before its
	// XACK.
	require.Eventually(t, func() bool { return s.attemptsOf(second) == 1 }, waitFor, tick)
	require.Equal(t, int64(2), b.pending(t), "neither XACK has gone through")

	// Let the first entry idle past ReclaimIdle, then let the reclaim loop look twice.
	require.Eventually(t, func() bool {
		idle, err := b.client.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: b.keys.Stream("high"), Group: "deliver", Idle: cfg.ReclaimIdle, Start: first, End: first, Count: 1,
		}).Result()
		require.NoError(t, err)
		return len(idle) == 1
	}, waitFor, tick)
	looks := hold.pendings.Load()
	require.Eventually(t, func() bool { return hold.pendings.Load() >= looks+2 }, waitFor, tick)

	src.cancel()
	close(hold.release)
	require.NoError(t, src.wait())
	require.Equal(t, int64(0), b.pending(t), "shutdown waited for the XACKs")
	require.Equal(t, map[string]int{first: 1, second: 1}, s.delivered(), "no entry sent twice")
}

func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arrived := make(chan struct{}, 1)
	s, cfg := b.withSink(t, func(r *http.Request, _ event.Event, _ int) int {
		arrived <- struct{}{}
		<-r.Context().Done()
		return http.StatusServiceUnavailable
	})
	cfg.SinkTimeout = 10 * time.Second
	cfg.ReclaimIdle = 20 * time.Second
	cfg.ShutdownTimeout = 50 * time.Millisecond
	src := b.start(t, cfg)
	b.add(t, "n1")
	<-arrived

	require.NoError(t, src.stop())
	require.Equal(t, int64(1), b.pending(t), "a send cut short leaves its entry pending")
	require.Empty(t, s.delivered())
}

func TestResumeOwnPending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	s, cfg := b.withSink(t, answer(http.StatusOK))
	cfg.MaxDeliveries = 3
	// Far beyond the test: only resuming can send what a previous process read.
	cfg.SinkTimeout = 10 * time.Second
	cfg.ReclaimIdle = 20 * time.Second

	// A previous process named c1 read two entries and died; one of them had already been
	// delivered MaxDeliveries times.
	previous := queue.NewGroup(b.client, b.keys, "high", "deliver", "c1")
	require.NoError(t, previous.Create(ctx))
	resumed, exhausted := b.add(t, "n1"), b.add(t, "n2")
	_, err := previous.Read(ctx, 2, time.Millisecond)
	require.NoError(t, err)
	for range cfg.MaxDeliveries - 1 {
		_, err := previous.Claim(ctx, 0, exhausted)
		require.NoError(t, err)
	}
	fresh := b.add(t, "n3")

	b.start(t, cfg)
	b.eventuallyDelivered(t, s, resumed, fresh)
	require.Equal(t, map[string]int{resumed: 1, fresh: 1}, s.delivered())
	dead, err := b.client.XRange(ctx, b.keys.DeadLetter("high"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, exhausted, dead[0].Values[queue.FieldOriginalID])
}

func TestRedisRestart(t *testing.T) {
	t.Parallel()
	srv := pulsetest.StartRedis(t)
	b := setupWith(t, srv.URL(), "restart")
	s, cfg := b.withSink(t, answer(http.StatusOK))
	b.start(t, cfg)
	id := b.add(t, "n1")
	b.eventuallyDelivered(t, s, id)

	srv.Stop()
	require.Eventually(t, func() bool {
		return strings.Contains(b.logs.String(), "redis unavailable")
	}, waitFor, tick)
	srv.Start()

	// The restarted server is empty: the source creates its group again and goes on.
	var next string
	require.Eventually(t, func() bool {
		var err error
		next, err = b.client.XAdd(context.Background(), &redis.XAddArgs{
			Stream: b.keys.Stream("high"),
			Values: entryFields("n2"),
		}).Result()
		return err == nil
	}, waitFor, tick)
	b.eventuallyDelivered(t, s, next)
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	valid := streamsource.Config{
		Priority: "high", Group: "g", Sink: "http://sink.example", Concurrency: 1,
		SinkTimeout: time.Second, ReclaimIdle: 2 * time.Second, MaxDeliveries: 1,
	}
	tests := map[string]func(c *streamsource.Config){
		"no priority":           func(c *streamsource.Config) { c.Priority = "" },
		"no group":              func(c *streamsource.Config) { c.Group = "" },
		"no concurrency":        func(c *streamsource.Config) { c.Concurrency = 0 },
		"reclaim before send":   func(c *streamsource.Config) { c.ReclaimIdle = c.SinkTimeout },
		"no deliveries":         func(c *streamsource.Config) { c.MaxDeliveries = 0 },
		"relative sink":         func(c *streamsource.Config) { c.Sink = "/deliver" },
		"not http":              func(c *streamsource.Config) { c.Sink = "ftp://sink.example" },
		"negative shutdown":     func(c *streamsource.Config) { c.ShutdownTimeout = -time.Second },
		"no sink timeout":       func(c *streamsource.Config) { c.SinkTimeout = 0 },
		"sink not a URL at all": func(c *streamsource.Config) { c.Sink = "http://[::1" },
	}
	_, err := streamsource.New(valid, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			mutate(&cfg)
			_, err := streamsource.New(cfg, nil, slog.New(slog.DiscardHandler))
			require.Error(t, err)
		})
	}
}
