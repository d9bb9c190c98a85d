package metrics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// providerCollector exports what the deliver pods report of their provider accounts: the
// state of each account's circuit breaker and the sends its rate limit held back.
type providerCollector struct {
	client    redis.Cmdable
	keys      queue.Keys
	now       func() time.Time
	breaker   *prometheus.Desc
	throttled *prometheus.Desc
}

func newProviderCollector(client redis.Cmdable, keys queue.Keys, now func() time.Time) *providerCollector {
	return &providerCollector{
		client: client, keys: keys, now: now,
		breaker: prometheus.NewDesc(prometheus.BuildFQName(namespace, "provider", "breaker_state"),
			"State of a provider account's circuit breaker, the worst over the deliver pods: 0 closed, 1 half-open, 2 open.",
			[]string{"channel", "account"}, nil),
		throttled: prometheus.NewDesc(prometheus.BuildFQName(namespace, "provider", "throttled_total"),
			"Sends a provider account's shared rate limit held back (waited for or put back), by provider (channel/account).",
			[]string{"provider"}, nil),
	}
}

// Describe implements collector.
func (c *providerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.breaker
	ch <- c.throttled
}

// Update implements collector. A pod's breaker report holds until the time it carries (an
// open breaker's cooldown, or a cooldown after it went half-open); a report past that comes
// from a pod that may have scaled away, so it is ignored and deleted.
func (c *providerCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	pipe := c.client.Pipeline()
	breakers := pipe.HGetAll(ctx, c.keys.Breakers())
	throttled := pipe.HGetAll(ctx, c.keys.Throttled())
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("read provider accounts: %w", err)
	}
	now := c.now().Unix()
	states := map[[2]string]float64{}
	var stale, bad []string
	for field, value := range breakers.Val() {
		parts := strings.SplitN(field, ":", 3)
		s, u, ok := strings.Cut(value, ":")
		state, serr := strconv.Atoi(s)
		until, uerr := strconv.ParseInt(u, 10, 64)
		if len(parts) != 3 || !ok || serr != nil || uerr != nil {
			bad = append(bad, field)
			continue
		}
		key := [2]string{parts[0], parts[1]}
		if _, seen := states[key]; !seen {
			states[key] = 0
		}
		if until != 0 && until < now {
			stale = append(stale, field)
			continue
		}
		states[key] = max(states[key], float64(state))
	}
	for key, state := range states {
		ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, state, key[0], key[1])
	}
	for field, value := range throttled.Val() {
		n, err := strconv.ParseFloat(value, 64)
		channel, account, ok := strings.Cut(field, ":")
		if err != nil || !ok {
			bad = append(bad, field)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.throttled, prometheus.CounterValue, n, channel+"/"+account)
	}
	if len(stale) > 0 {
		if err := c.client.HDel(ctx, c.keys.Breakers(), stale...).Err(); err != nil {
			return fmt.Errorf("delete stale breaker reports: %w", err)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("read provider accounts: fields %q are malformed", bad)
	}
	return nil
}
