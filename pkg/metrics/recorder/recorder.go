package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// LatencyBuckets are the upper bounds, in seconds, of the delivery latency histogram: from a
// fast webhook to a send that waited out hours of retries.
var LatencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800}

// Fields of a latency hash besides the buckets (a field per bucket upper bound, formatted by
// BucketField, holding the count of observations in that bucket alone, not cumulative).
const (
	LatencySumField   = "sum"
	LatencyCountField = "count"
	LatencyInfField   = "+Inf"
)

// BucketField is the hash field of the bucket with upper bound le.
func BucketField(le float64) string {
	return strconv.FormatFloat(le, 'g', -1, 64)
}

// AttemptField is the field of the attempts hash that counts one channel, priority and
// outcome.
func AttemptField(channel, priority, outcome string) string {
	return channel + ":" + priority + ":" + outcome
}

// Recorder accumulates delivery counters and the latency histogram in Redis, where they
// outlive the deliver functions that scale to zero; the metrics function exports them.
type Recorder struct {
	client redis.UniversalClient
	keys   queue.Keys
}

// New returns a recorder writing under keys.
func New(client redis.UniversalClient, keys queue.Keys) *Recorder {
	return &Recorder{client: client, keys: keys}
}

// Observation is one delivery attempt, as the metrics count it.
type Observation struct {
	Channel, Priority, Outcome string
	// Delivered is set when the attempt delivered; Latency is then the time from request (or
	// send_at) to delivery.
	Delivered bool
	Latency   time.Duration
}

// Attempt counts one delivery attempt and, when it delivered, its request-to-delivery latency,
// in one round trip.
func (r *Recorder) Attempt(ctx context.Context, channel, priority, outcome string, latency time.Duration, delivered bool) error {
	return r.Record(ctx, Observation{Channel: channel, Priority: priority, Outcome: outcome, Latency: latency, Delivered: delivered})
}

// Record counts several delivery attempts in one pipelined round trip. The observations are
// folded first: one HINCRBY per attempts field and latency bucket with the summed count, and
// one HINCRBYFLOAT per latency hash with the summed seconds, so a batch of one channel and
// priority costs a handful of commands however many deliveries it holds. The counts end up
// as if each observation had been recorded on its own, and the sum too but for the rounding
// of adding the seconds in Go before Redis adds them.
func (r *Recorder) Record(ctx context.Context, obs ...Observation) error {
	type hist struct {
		channel, priority string
		buckets           []int64 // per LatencyBuckets, then +Inf
		count             int64
		seconds           float64
	}
	type attempt struct{ channel, priority, outcome string }
	// Fields and hashes keep the order they were first seen in, so a batch always sends the
	// same commands in the same order.
	var (
		attempts     = make(map[attempt]int64, 4)
		attemptOrder = make([]attempt, 0, 4)
		hists        []hist
	)
	for _, o := range obs {
		a := attempt{o.Channel, o.Priority, o.Outcome}
		if _, ok := attempts[a]; !ok {
			attemptOrder = append(attemptOrder, a)
		}
		attempts[a]++
		if !o.Delivered {
			continue
		}
		i := 0
		for i < len(hists) && (hists[i].channel != o.Channel || hists[i].priority != o.Priority) {
			i++
		}
		if i == len(hists) {
			hists = append(hists, hist{channel: o.Channel, priority: o.Priority, buckets: make([]int64, len(LatencyBuckets)+1)})
		}
		h := &hists[i]
		seconds := o.Latency.Seconds()
		h.buckets[bucket(seconds)]++
		h.count++
		h.seconds += seconds
	}

	pipe := r.client.Pipeline()
	for _, a := range attemptOrder {
		pipe.HIncrBy(ctx, r.keys.Attempts(), AttemptField(a.channel, a.priority, a.outcome), attempts[a])
	}
	for _, h := range hists {
		key := r.keys.Latency(h.channel, h.priority)
		for b, n := range h.buckets {
			if n == 0 {
				continue
			}
			field := LatencyInfField
			if b < len(bucketFields) {
				field = bucketFields[b]
			}
			pipe.HIncrBy(ctx, key, field, n)
		}
		pipe.HIncrBy(ctx, key, LatencyCountField, h.count)
		pipe.HIncrByFloat(ctx, key, LatencySumField, h.seconds)
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record %d attempts in metrics: %w", len(obs), err)
	}
	return nil
}

// bucketFields are the hash fields of LatencyBuckets, formatted once.
var bucketFields = func() []string {
	fields := make([]string, len(LatencyBuckets))
	for i, le := range LatencyBuckets {
		fields[i] = BucketField(le)
	}
	return fields
}()

// bucket returns the index in LatencyBuckets of the bucket seconds falls in, or
// len(LatencyBuckets) for +Inf.
func bucket(seconds float64) int {
	for i, le := range LatencyBuckets {
		if seconds <= le {
			return i
		}
	}
	return len(LatencyBuckets)
}

// BreakerField is the field of the breakers hash that holds one pod's breaker of one
// account. Channel and account names never contain ':'; the pod name comes last and may.
func BreakerField(channel, account, pod string) string {
	return channel + ":" + account + ":" + pod
}

// BreakerValue is a breakers hash value: the breaker's state (0 closed, 1 half-open, 2 open)
// and the Unix second until which the report holds, 0 for ever. An open breaker's report
// holds until its cooldown ends; after that it is half-open at best. A report past its time
// comes from a pod that may be gone and is ignored.
func BreakerValue(state int, until time.Time) string {
	u := int64(0)
	if !until.IsZero() {
		u = until.Unix()
	}
	return strconv.Itoa(state) + ":" + strconv.FormatInt(u, 10)
}

// Breaker reports a pod's breaker state of an account. A closed breaker removes the pod's
// report and leaves the account's baseline "closed" entry (pod ""), so the account's series
// stays at 0 instead of vanishing.
func (r *Recorder) Breaker(ctx context.Context, channel, account, pod string, state int, until time.Time) error {
	pipe := r.client.Pipeline()
	if state == 0 {
		pipe.HDel(ctx, r.keys.Breakers(), BreakerField(channel, account, pod))
	} else {
		pipe.HSet(ctx, r.keys.Breakers(), BreakerField(channel, account, pod), BreakerValue(state, until))
	}
	pipe.HSet(ctx, r.keys.Breakers(), BreakerField(channel, account, ""), BreakerValue(0, time.Time{}))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record breaker of %s account %s: %w", channel, account, err)
	}
	return nil
}

// ThrottledField is the field of the throttled hash that counts one account.
func ThrottledField(channel, account string) string {
	return channel + ":" + account
}

// Throttled counts a send that an account's rate limit held back.
func (r *Recorder) Throttled(ctx context.Context, channel, account string) error {
	if err := r.client.HIncrBy(ctx, r.keys.Throttled(), ThrottledField(channel, account), 1).Err(); err != nil {
		return fmt.Errorf("count throttled send of %s account %s: %w", channel, account, err)
	}
	return nil
}

// maxBuffered bounds the observations a Buffer holds between flushes; beyond it, while Redis
// does not answer, new ones are dropped and counted.
const maxBuffered = 1 << 16

// Buffer gathers observations in memory and records them every interval in one round trip,
// however many deliveries the interval held, so a delivery costs a slice append instead of a
// Redis command, and a quiet pod sends nothing. What a flush fails to record is logged and
// dropped: metrics never hold deliveries up. Close records what is left, so a graceful
// shutdown loses nothing; a killed pod loses at most an interval's observations.
type Buffer struct {
	rec      *Recorder
	logger   *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	pending []Observation
	dropped int

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewBuffer returns a started buffer that records into r every interval; Close it when done.
func (r *Recorder) NewBuffer(interval time.Duration, logger *slog.Logger) *Buffer {
	b := &Buffer{rec: r, logger: logger, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Add buffers an observation for the next flush.
func (b *Buffer) Add(o Observation) {
	b.mu.Lock()
	if len(b.pending) < maxBuffered {
		b.pending = append(b.pending, o)
	} else {
		b.dropped++
	}
	b.mu.Unlock()
}

// Close stops the flushes and records what is buffered. Calls after the first do nothing.
func (b *Buffer) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *Buffer) loop() {
	defer close(b.done)
	tick := time.NewTicker(b.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

// flush records the buffered observations; the next ones go to a new slice meanwhile.
func (b *Buffer) flush() {
	b.mu.Lock()
	obs, dropped := b.pending, b.dropped
	b.pending, b.dropped = nil, 0
	b.mu.Unlock()
	if dropped > 0 {
		b.logger.Warn("metrics buffer full: observations dropped", "observations", dropped)
	}
	if len(obs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.interval+5*time.Second)
	defer cancel()
	if err := b.rec.Record(ctx, obs...); err != nil {
		b.logger.Warn("metrics not recorded", "observations", len(obs), "error", err)
	}
}
