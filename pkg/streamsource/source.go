package streamsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/batch"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
)

const (
	// readBlock is how long one read waits for new entries; it bounds how late the read loop
	// notices a cancelled context.
	readBlock = time.Second
	// minReclaimEvery keeps a tiny reclaim time from turning the reclaim loop into a busy loop.
	minReclaimEvery = 100 * time.Millisecond
	// maxReclaimEvery keeps a long reclaim time from leaving failed entries waiting too long.
	maxReclaimEvery = 30 * time.Second
	// sinkBackoffMin and sinkBackoffMax bound the wait before reading more while the sink fails.
	sinkBackoffMin = 100 * time.Millisecond
	sinkBackoffMax = 5 * time.Second
	// redisBackoffMin and redisBackoffMax bound the wait between Redis calls that fail.
	redisBackoffMin = 100 * time.Millisecond
	redisBackoffMax = 5 * time.Second
	// ackTimeout bounds acknowledging one entry after the sink took it.
	ackTimeout = 5 * time.Second
	// maxDrain bounds how much of a sink's answer is read so the connection can be reused.
	maxDrain = 64 << 10
)

// Config configures a Source.
type Config struct {
	// Priority names the stream to read: high or low.
	Priority string
	// Prefix is the hash tag every Redis key is built from (queue.NewKeys).
	Prefix string
	// Sink is the absolute http(s) URL events are POSTed to.
	Sink string
	// Group is the consumer group's name.
	Group string
	// Consumer names this reader within the group; empty means the host name.
	Consumer string
	// Concurrency bounds the events in flight to the sink; at least 1.
	Concurrency int
	// SinkTimeout bounds one POST to the sink; positive.
	SinkTimeout time.Duration
	// ReclaimIdle is how long an entry may stay pending before another consumer claims it; it
	// must be longer than SinkTimeout.
	ReclaimIdle time.Duration
	// MaxDeliveries is how many times an entry is offered before it goes to the dead-letter
	// stream; at least 1.
	MaxDeliveries int64
	// ShutdownTimeout is how long in-flight sends may take to finish after Run's context ends;
	// zero or more.
	ShutdownTimeout time.Duration
}

// ConfigFrom returns the source configuration of c, as cmd/stream-source and `pulse dev` load
// it from the environment.
func ConfigFrom(c config.StreamSource) Config {
	return Config{
		Priority: c.Priority, Prefix: c.Prefix, Sink: c.Sink, Group: c.Group, Consumer: c.Consumer,
		Concurrency: c.Concurrency, SinkTimeout: c.SinkTimeout, ReclaimIdle: c.ReclaimIdle,
		MaxDeliveries: c.MaxDeliveries, ShutdownTimeout: c.ShutdownTimeout,
	}
}

// Source feeds one priority's stream to its sink, one CloudEvent per entry, with at most
// cfg.Concurrency events in flight. Build it with New and call Run once.
type Source struct {
	cfg    Config
	group  *queue.Group
	http   *http.Client
	logger *slog.Logger
	now    func() time.Time

	reclaimEvery time.Duration

	// slots holds one token per event in flight; reading takes tokens first, so the source
	// never holds more entries than it may send.
	slots chan struct{}
	// sinkFailures counts the sink's consecutive failures. While it is above zero the source
	// sends one entry at a time and waits before reading more, so a dead sink is not hammered.
	sinkFailures atomic.Int64
	// sinkRecovered wakes a read loop waiting after failures when a send succeeds.
	sinkRecovered chan struct{}

	// sendCtx outlives Run's context so that sends in flight at shutdown can finish;
	// cancelSends ends them when the shutdown budget runs out.
	sendCtx     context.Context
	cancelSends context.CancelFunc
	sends       sync.WaitGroup
	// acks acknowledges the entries of concurrent sends in shared XACKs.
	acks *batch.Batcher[string, struct{}]

	mu sync.Mutex
	// inFlight holds the ids being sent, so the reclaim loop does not claim them.
	inFlight map[string]struct{}
	// lastFailure holds why the last send of an entry failed, for its dead-letter reason.
	lastFailure map[string]string
}

// New returns a source reading the stream of cfg.Priority with client and sending to
// cfg.Sink. The consumer's name is cfg.Consumer or, when empty, the host name, so a pod that
// restarts with the same name resumes its own pending entries. New does not talk to Redis.
func New(cfg Config, client redis.UniversalClient, logger *slog.Logger) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("create stream source: %w", err)
	}
	consumer := cfg.Consumer
	if consumer == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("create stream source: read host name for the consumer name: %w", err)
		}
		if host == "" {
			return nil, errors.New("create stream source: no consumer name and an empty host name")
		}
		consumer = host
	}
	group := queue.NewGroup(client, queue.NewKeys(cfg.Prefix), cfg.Priority, cfg.Group, consumer)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Keep a warm connection for every slot: a new TCP (and TLS) handshake per event would
	// cost more than the event.
	transport.MaxIdleConns = max(transport.MaxIdleConns, cfg.Concurrency)
	transport.MaxIdleConnsPerHost = cfg.Concurrency

	return &Source{
		cfg:           cfg,
		group:         group,
		http:          &http.Client{Transport: transport},
		logger:        logger.With("stream", group.Stream(), "group", cfg.Group, "consumer", consumer),
		now:           time.Now,
		reclaimEvery:  min(max(cfg.ReclaimIdle/2, minReclaimEvery), maxReclaimEvery),
		slots:         make(chan struct{}, cfg.Concurrency),
		sinkRecovered: make(chan struct{}, 1),
		inFlight:      map[string]struct{}{},
		lastFailure:   map[string]string{},
	}, nil
}

// validate is the one place a source's configuration is checked; config.Load checks only that
// PULSE_PRIORITY names a stream, so the error names the variable.
func (cfg Config) validate() error {
	switch {
	case cfg.Priority == "":
		return errors.New("no priority")
	case cfg.Group == "":
		return errors.New("no group name")
	case cfg.Concurrency < 1:
		return fmt.Errorf("concurrency %d: want at least 1", cfg.Concurrency)
	case cfg.SinkTimeout <= 0:
		return fmt.Errorf("sink timeout %s: want positive", cfg.SinkTimeout)
	case cfg.ReclaimIdle <= cfg.SinkTimeout:
		return fmt.Errorf("reclaim idle %s must be longer than sink timeout %s", cfg.ReclaimIdle, cfg.SinkTimeout)
	case cfg.MaxDeliveries < 1:
		return fmt.Errorf("max deliveries %d: want at least 1", cfg.MaxDeliveries)
	case cfg.ShutdownTimeout < 0:
		return fmt.Errorf("shutdown timeout %s: want zero or more", cfg.ShutdownTimeout)
	}
	u, err := url.Parse(cfg.Sink)
	if err != nil {
		return errors.New("sink is not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("sink %s: want an absolute http or https URL", u.Redacted())
	}
	return nil
}

// Run creates the group if needed, resumes this consumer's own pending entries, then reads
// new entries and reclaims idle ones until ctx is cancelled. Redis errors are logged and
// retried with backoff; a lost group is created again. After ctx is cancelled Run stops
// reading, gives the sends in flight cfg.ShutdownTimeout to finish, and returns nil; it never
// destroys the group, and entries not acknowledged stay pending for the next consumer.
func (s *Source) Run(ctx context.Context) error {
	s.sendCtx, s.cancelSends = context.WithCancel(context.WithoutCancel(ctx))
	defer s.cancelSends()
	s.acks = batch.New(s.sendCtx, func(ctx context.Context, ids []string) ([]struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, ackTimeout)
		defer cancel()
		return make([]struct{}, len(ids)), s.group.Ack(ctx, ids...)
	}, s.cfg.Concurrency, 2)
	s.acks.Start()

	s.logger.Info("stream source starting",
		"sink", redactedURL(s.cfg.Sink), "concurrency", s.cfg.Concurrency,
		"reclaim_idle", s.cfg.ReclaimIdle.String(), "max_deliveries", s.cfg.MaxDeliveries)
	if s.createGroup(ctx) {
		var loops sync.WaitGroup
		loops.Go(func() { s.readLoop(ctx) })
		loops.Go(func() { s.reclaimLoop(ctx) })
		loops.Wait()
	}
	s.drain()
	s.acks.Stop()
	s.logger.Info("stream source stopped")
	return nil
}

// createGroup creates the group, retrying until it succeeds or ctx is cancelled; it reports
// whether it succeeded.
func (s *Source) createGroup(ctx context.Context) bool {
	for attempt := 1; ; attempt++ {
		err := s.group.Create(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.logger.Warn("redis unavailable; retrying", "op", "create group", "error", err.Error(), "attempt", attempt)
		if !sleep(ctx, backoff(attempt, redisBackoffMin, redisBackoffMax)) {
			return false
		}
	}
}

// drain waits for the sends in flight, at most cfg.ShutdownTimeout, then cancels the rest.
func (s *Source) drain() {
	done := make(chan struct{})
	go func() {
		s.sends.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.mu.Lock()
		n := len(s.inFlight)
		s.mu.Unlock()
		s.logger.Warn("shutdown timeout: cancelling sends; their entries stay pending", "in_flight", n)
		s.cancelSends()
		<-done
	}
}

// readLoop first re-reads this consumer's own pending entries (those a previous process with
// the same name read and did not acknowledge), then new entries, as many as there are free
// slots.
func (s *Source) readLoop(ctx context.Context) {
	resuming, after, resumed := true, "0", 0
	redisFailures := 0
	for ctx.Err() == nil {
		if !s.waitForSink(ctx) {
			return
		}
		want := s.cfg.Concurrency
		if s.sinkFailures.Load() > 0 {
			want = 1
		}
		n := s.acquire(ctx, want)
		if n == 0 {
			return
		}
		var msgs []queue.Message
		var err error
		if resuming {
			msgs, err = s.group.ReadPending(ctx, after, int64(n))
		} else {
			msgs, err = s.group.Read(ctx, int64(n), readBlock)
		}
		if err != nil {
			s.release(n)
			redisFailures++
			s.redisFailed(ctx, "read", err, redisFailures)
			continue
		}
		redisFailures = 0
		if resuming {
			if len(msgs) == 0 {
				resuming = false
				s.logger.Info("resumed pending entries", "count", resumed)
			} else {
				after = msgs[len(msgs)-1].ID
				resumed += len(msgs)
				msgs = s.dropExhausted(ctx, msgs)
			}
		}
		s.release(n - len(msgs))
		for _, m := range msgs {
			s.dispatch(m)
		}
	}
}

// dropExhausted moves to the dead-letter stream the resumed entries that had already been
// delivered cfg.MaxDeliveries times before this read, and returns the others.
func (s *Source) dropExhausted(ctx context.Context, msgs []queue.Message) []queue.Message {
	pending, err := s.group.Pending(ctx, queue.PendingRange{
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)),
		Consumer: s.group.Consumer(),
	})
	if err != nil {
		// Sending again is safe; the reclaim loop will catch the entry on a later failure.
		s.logger.Warn("count deliveries of resumed entries", "error", err.Error())
		return msgs
	}
	deliveries := make(map[string]int64, len(pending))
	for _, p := range pending {
		deliveries[p.ID] = p.Deliveries
	}
	keep := msgs[:0]
	for _, m := range msgs {
		// This read counted once more: more than MaxDeliveries means MaxDeliveries before.
		if n := deliveries[m.ID]; n > s.cfg.MaxDeliveries {
			s.deadLetter(ctx, m.ID, n, 0)
			continue
		}
		keep = append(keep, m)
	}
	return keep
}

// reclaimLoop periodically claims the entries idle longer than cfg.ReclaimIdle, whoever
// holds them: their consumer died, or their send failed.
func (s *Source) reclaimLoop(ctx context.Context) {
	ticker := time.NewTicker(s.reclaimEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			s.reclaim(ctx)
		}
	}
}

// reclaim claims and sends idle entries, as many as there are free slots (one while the sink
// fails), and moves those delivered cfg.MaxDeliveries times to the dead-letter stream.
func (s *Source) reclaim(ctx context.Context) {
	claimed, dead := 0, 0
	defer func() {
		if claimed+dead > 0 {
			s.logger.Info("reclaimed idle entries", "claimed", claimed, "dead_lettered", dead)
		}
	}()
	page := int64(max(s.cfg.Concurrency, 16))
	start := "-"
	for ctx.Err() == nil {
		pending, err := s.group.Pending(ctx, queue.PendingRange{Start: start, End: "+", Count: page, MinIdle: s.cfg.ReclaimIdle})
		if err != nil {
			s.redisFailed(ctx, "list idle entries", err, 0)
			return
		}
		var ids []string
		for _, p := range pending {
			if s.sending(p.ID) {
				continue
			}
			if p.Deliveries >= s.cfg.MaxDeliveries {
				if s.deadLetter(ctx, p.ID, p.Deliveries, s.cfg.ReclaimIdle) {
					dead++
				}
				continue
			}
			ids = append(ids, p.ID)
		}
		probe := s.sinkFailures.Load() > 0
		if probe && len(ids) > 1 {
			ids = ids[:1]
		}
		for len(ids) > 0 {
			n := s.acquire(ctx, len(ids))
			if n == 0 {
				return
			}
			msgs, err := s.group.Claim(ctx, s.cfg.ReclaimIdle, ids[:n]...)
			if err != nil {
				s.release(n)
				s.redisFailed(ctx, "claim", err, 0)
				return
			}
			s.release(n - len(msgs))
			for _, m := range msgs {
				s.logger.Debug("claimed idle entry", "entry_id", m.ID)
				s.dispatch(m)
			}
			claimed += len(msgs)
			ids = ids[n:]
		}
		if probe || int64(len(pending)) < page {
			return
		}
		start = "(" + pending[len(pending)-1].ID
	}
}

// dispatch sends m in the background, holding the slot taken for it until the send ends.
func (s *Source) dispatch(m queue.Message) {
	if m.Fields == nil {
		// Trimmed while pending: there is nothing to send. PostgreSQL still knows the
		// notification, and cron enqueues it again if it stays queued.
		s.logger.Warn("entry deleted while pending; acknowledging it", "entry_id", m.ID)
		if err := s.group.Ack(s.sendCtx, m.ID); err != nil {
			s.logger.Warn("ack deleted entry", "entry_id", m.ID, "error", err.Error())
		}
		s.release(1)
		return
	}
	s.mu.Lock()
	s.inFlight[m.ID] = struct{}{}
	s.mu.Unlock()
	s.sends.Go(func() {
		defer s.release(1)
		defer func() {
			s.mu.Lock()
			delete(s.inFlight, m.ID)
			s.mu.Unlock()
		}()
		s.deliver(m)
	})
}

// deliver sends one entry and acknowledges it after a 2xx; otherwise the entry stays pending.
func (s *Source) deliver(m queue.Message) {
	// The entry's logger is built only when there is something to say: formatting its
	// attributes for every entry costs more than the rest of the happy path's logging.
	logger := func() *slog.Logger {
		return s.logger.With("entry_id", m.ID, "notification_id", m.Fields[queue.FieldNotificationID])
	}
	status, err := s.send(s.sendCtx, m)
	var reason string
	switch {
	case err != nil:
		reason = err.Error()
	case status < 200 || status > 299:
		reason = fmt.Sprintf("sink answered %d", status)
	}
	if refused(status) {
		// The sink says the event can never succeed: offering it again would only fail again.
		reason = fmt.Sprintf("sink refused the event with %d", status)
		moved, err := s.group.DeadLetter(s.sendCtx, m.ID, reason, 0, s.now())
		if err == nil && moved {
			s.forgetFailure(m.ID)
			logger().Warn("entry moved to dead letter", "reason", reason)
			return
		}
	}
	if reason != "" {
		s.sinkFailures.Add(1)
		s.recordFailure(m.ID, reason)
		logger().Warn("sink did not take the entry; it stays pending", "reason", reason)
		return
	}
	if s.sinkFailures.Swap(0) > 0 {
		select {
		case s.sinkRecovered <- struct{}{}:
		default:
		}
	}
	s.forgetFailure(m.ID)
	if _, err := s.acks.Do(s.sendCtx, m.ID); err != nil {
		// The sink has it; the entry will be sent again later, which is harmless.
		logger().Warn("ack delivered entry", "error", err.Error())
		return
	}
	if s.logger.Enabled(s.sendCtx, slog.LevelDebug) {
		logger().Debug("entry delivered", "status", status)
	}
}

// refused reports a status by which the sink says the event itself is wrong (400, 404, 413,
// 422 …), as opposed to a sink that is down, overloaded or timing out.
func refused(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout &&
		status != http.StatusConflict && status != http.StatusTooManyRequests
}

// send POSTs the event of m to the sink in binary mode and returns the sink's status.
func (s *Source) send(ctx context.Context, m queue.Message) (int, error) {
	ev, err := NewEvent(s.cfg.Priority, m)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SinkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Sink, nil)
	if err != nil {
		return 0, fmt.Errorf("build request for entry %s: %w", m.ID, err)
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&ev), req); err != nil {
		return 0, fmt.Errorf("encode event for entry %s: %w", m.ID, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		// net/http redacts a password in the URL of its errors.
		return 0, fmt.Errorf("post entry %s: %w", m.ID, err)
	}
	defer resp.Body.Close()
	// Read what the sink answered so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return resp.StatusCode, nil
}

// deadLetter moves an entry to the dead-letter stream, unless it was delivered less than
// minIdle ago, and reports whether it did.
func (s *Source) deadLetter(ctx context.Context, id string, deliveries int64, minIdle time.Duration) bool {
	reason := fmt.Sprintf("delivered %d times without a 2xx from the sink", deliveries)
	s.mu.Lock()
	last, ok := s.lastFailure[id]
	s.mu.Unlock()
	if ok {
		reason += "; last: " + last
	}
	moved, err := s.group.DeadLetter(ctx, id, reason, minIdle, s.now())
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("move entry to dead letter", "entry_id", id, "error", err.Error())
		}
		return false
	}
	if moved {
		s.forgetFailure(id)
		s.logger.Warn("entry moved to dead letter", "entry_id", id, "deliveries", deliveries, "reason", reason)
	}
	return moved
}

func (s *Source) recordFailure(id, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Entries acknowledged by another consumer never come back to be forgotten: bound the map.
	if _, ok := s.lastFailure[id]; !ok && len(s.lastFailure) >= 16*s.cfg.Concurrency {
		for k := range s.lastFailure {
			delete(s.lastFailure, k)
			break
		}
	}
	s.lastFailure[id] = reason
}

func (s *Source) forgetFailure(id string) {
	s.mu.Lock()
	delete(s.lastFailure, id)
	s.mu.Unlock()
}

func (s *Source) sending(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inFlight[id]
	return ok
}

// acquire waits for one free slot, takes up to want, and returns how many it took; zero
// when ctx was cancelled first.
func (s *Source) acquire(ctx context.Context, want int) int {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < want {
		select {
		case s.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (s *Source) release(n int) {
	for range n {
		<-s.slots
	}
}

// waitForSink waits before reading more while the sink fails, until the wait is over or a
// send succeeds. It reports false when ctx was cancelled.
func (s *Source) waitForSink(ctx context.Context) bool {
	n := s.sinkFailures.Load()
	if n == 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(backoff(int(min(n, 32)), sinkBackoffMin, sinkBackoffMax))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.sinkRecovered:
	case <-ctx.Done():
		return false
	}
	return true
}

// redisFailed logs a failed Redis call and, for the read loop (attempt > 0), waits before
// the next. A lost group is created again from the first entry.
func (s *Source) redisFailed(ctx context.Context, op string, err error, attempt int) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, queue.ErrNoGroup) {
		s.logger.Warn("consumer group lost; creating it again from the first entry", "op", op, "error", err.Error())
		if err := s.group.Create(ctx); err == nil {
			return
		} else if ctx.Err() == nil {
			s.logger.Warn("redis unavailable; retrying", "op", "create group", "error", err.Error())
		}
	} else {
		s.logger.Warn("redis unavailable; retrying", "op", op, "error", err.Error(), "attempt", attempt)
	}
	if attempt > 0 {
		sleep(ctx, backoff(attempt, redisBackoffMin, redisBackoffMax))
	}
}

// backoff returns the wait before the next try after attempt failures: doubling from lo up
// to hi, with the upper half jittered so that many sources do not retry in step.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is cancelled; it reports false in the second case.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redactedURL returns rawURL without its password, for logs.
func redactedURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
