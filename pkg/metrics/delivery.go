package metrics

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// outcomes are the outcome label values of the attempt counter.
var outcomes = []channel.Outcome{channel.Delivered, channel.Transient, channel.Permanent}

// newAttemptsCollector exports the delivery attempts the deliver functions count in Redis.
// Every channel, priority and outcome is reported, 0 until its first attempt, so that rate()
// sees the first one.
func newAttemptsCollector(client redis.Cmdable, keys queue.Keys) collector {
	return collectorFunc{attemptsDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		fields, err := client.HGetAll(ctx, keys.Attempts()).Result()
		if err != nil {
			return fmt.Errorf("read attempt counters: %w", err)
		}
		counts := map[[3]string]float64{}
		for _, chn := range notification.Channels {
			for _, p := range notification.Priorities {
				for _, o := range outcomes {
					counts[[3]string{string(chn), string(p), string(o)}] = 0
				}
			}
		}
		var bad []string
		for field, value := range fields {
			parts := strings.Split(field, ":")
			n, err := strconv.ParseFloat(value, 64)
			if len(parts) != 3 || err != nil {
				bad = append(bad, field)
				continue
			}
			counts[[3]string(parts)] = n
		}
		for labels, n := range counts {
			ch <- prometheus.MustNewConstMetric(attemptsDesc, prometheus.CounterValue, n, labels[:]...)
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			return fmt.Errorf("read attempt counters: fields %q are not channel:priority:outcome counts", bad)
		}
		return nil
	}}
}

// newLatencyCollector exports the delivery latency histograms the deliver functions accumulate
// in Redis: a hash per channel and priority, holding the count of each bucket alone (not
// cumulative), the sum and the count. Every channel and priority is reported, empty until its
// first delivery.
func newLatencyCollector(client redis.Cmdable, keys queue.Keys) collector {
	return collectorFunc{latencyDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		type hist struct {
			channel, priority string
			cmd               *redis.MapStringStringCmd
		}
		var hists []hist
		pipe := client.Pipeline()
		for _, chn := range notification.Channels {
			for _, p := range notification.Priorities {
				hists = append(hists, hist{string(chn), string(p), pipe.HGetAll(ctx, keys.Latency(string(chn), string(p)))})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("read latency histograms: %w", err)
		}
		for _, h := range hists {
			m, err := histogram(latencyDesc, h.cmd.Val(), h.channel, h.priority)
			if err != nil {
				return fmt.Errorf("read latency histogram of %s %s: %w", h.priority, h.channel, err)
			}
			ch <- m
		}
		return nil
	}}
}

// histogram builds a histogram from a latency hash. Its count is the sum of its buckets, not
// the hash's count field: the deliver functions update the fields one command after another,
// and a scrape in between must still see a histogram whose +Inf bucket equals its count.
func histogram(desc *prometheus.Desc, fields map[string]string, labels ...string) (prometheus.Metric, error) {
	perBucket := map[float64]uint64{}
	for _, le := range recorder.LatencyBuckets {
		perBucket[le] = 0
	}
	var count uint64
	var sum float64
	for field, value := range fields {
		switch field {
		case recorder.LatencyCountField:
			continue
		case recorder.LatencySumField:
			s, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", field, err)
			}
			sum = s
			continue
		}
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", field, err)
		}
		count += n
		if field == recorder.LatencyInfField {
			continue
		}
		le, err := strconv.ParseFloat(field, 64)
		if err != nil || math.IsInf(le, 0) || math.IsNaN(le) {
			return nil, fmt.Errorf("field %s is not a bucket's upper bound", field)
		}
		perBucket[le] += n
	}
	cumulative := make(map[float64]uint64, len(perBucket))
	var running uint64
	for _, le := range slices.Sorted(maps.Keys(perBucket)) {
		running += perBucket[le]
		cumulative[le] = running
	}
	return prometheus.NewConstHistogram(desc, count, sum, cumulative, labels...)
}
