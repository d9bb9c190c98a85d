package recorder

import (
	"context"
	"fmt"
	"strconv"
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

// Record counts several delivery attempts in one pipelined round trip.
func (r *Recorder) Record(ctx context.Context, obs ...Observation) error {
	pipe := r.client.Pipeline()
	for _, o := range obs {
		pipe.HIncrBy(ctx, r.keys.Attempts(), AttemptField(o.Channel, o.Priority, o.Outcome), 1)
		if !o.Delivered {
			continue
		}
		key := r.keys.Latency(o.Channel, o.Priority)
		seconds := o.Latency.Seconds()
		field := LatencyInfField
		for _, le := range LatencyBuckets {
			if seconds <= le {
				field = BucketField(le)
				break
			}
		}
		pipe.HIncrBy(ctx, key, field, 1)
		pipe.HIncrBy(ctx, key, LatencyCountField, 1)
		pipe.HIncrByFloat(ctx, key, LatencySumField, seconds)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record %d attempts in metrics: %w", len(obs), err)
	}
	return nil
}
