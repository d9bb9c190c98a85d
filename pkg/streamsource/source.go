package streamsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	cfg   Config
	group *queue.Group
	http  *http.Client
	// post is the request every send copies, its URL parsed once.
	post *http.Request
	// eventHeader holds the header lines every event shares.
	eventHeader http.Header
	logger      *slog.Logger
	now         func() time.Time

	reclaimEvery time.Duration

	// slots holds one token per event at the sink; reading takes tokens first, so the source
	// never holds more entries than it may send. A token comes back when the sink answered,
	// before the entry is acknowledged.
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
	// acks acknowledges the entries of concurrent sends in shared XACKs, one at a time: no
	// send waits for them, so the XACKs that pile up behind one go together in the next.
	acks *batch.Batcher[string, struct{}]

	mu sync.Mutex
	// inFlight holds the ids being sent or acknowledged, so the reclaim loop does not claim
	// them.
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

	post, err := http.NewRequest(http.MethodPost, cfg.Sink, nil)
	if err != nil {
		// The error would quote the URL, password and all.
		return nil, fmt.Errorf("create stream source: sink %s is not a URL to post to", redactedURL(cfg.Sink))
	}
	// The Host line comes from the URL all the same; a Host set apart makes the client copy
	// the URL on every send.
	post.Host = ""

	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Keep a warm connection for every slot: a new TCP (and TLS) handshake per event would
	// cost more than the event.
	transport.MaxIdleConns = max(transport.MaxIdleConns, cfg.Concurrency)
	transport.MaxIdleConnsPerHost = cfg.Concurrency

	return &Source{
		cfg:           cfg,
		group:         group,
		http:          &http.Client{Transport: transport},
		post:          post,
		eventHeader:   newEventHeader(cfg.Priority),
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
	}, s.cfg.Concurrency, 1)
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
