package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// newStatusCollector reports how many notifications are in each state.
func newStatusCollector(st *store.Store) collector {
	return collectorFunc{byStatusDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		counts, err := st.StatusCounts(ctx)
		if err != nil {
			return err
		}
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(byStatusDesc, prometheus.GaugeValue, float64(n), string(status))
		}
		return nil
	}}
}

// newFailureRateCollector reports, per channel, the percentage of the deliveries that finished
// within the failure window that failed. Every channel is reported, 0 when none of its
// notifications finished within the window, so an alert on the rate never sees it vanish.
func newFailureRateCollector(st *store.Store, window time.Duration, now func() time.Time) collector {
	return collectorFunc{failureRateDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		rates, err := failureRates(ctx, st, now().Add(-window))
		if err != nil {
			return err
		}
		for _, r := range rates {
			ch <- prometheus.MustNewConstMetric(failureRateDesc, prometheus.GaugeValue, r.rate, string(r.channel))
		}
		return nil
	}}
}

// channelRate is how one channel's notifications that finished within the window ended.
type channelRate struct {
	channel           notification.Channel
	failed, delivered int64
	// rate is FailureRate of the two.
	rate float64
}

// failureRates returns every channel's failure rate over the notifications that finished at or
// after since, the known channels first in their order, then any other channel the counts name.
func failureRates(ctx context.Context, st *store.Store, since time.Time) ([]channelRate, error) {
	finished, err := st.FinishedSince(ctx, since)
	if err != nil {
		return nil, err
	}
	channels := slices.Clone(notification.Channels)
	for chn := range finished {
		if !slices.Contains(channels, chn) {
			channels = append(channels, chn)
		}
	}
	out := make([]channelRate, len(channels))
	for i, chn := range channels {
		counts := finished[chn]
		out[i] = channelRate{channel: chn, failed: counts[notification.Failed], delivered: counts[notification.Delivered],
			rate: FailureRate(counts)}
	}
	return out, nil
}

// FailureRate is the percentage of the delivered and failed notifications of counts that
// failed, 0 when there are none. Cancelled and expired notifications were never tried to the
// end, so they do not count.
func FailureRate(counts map[notification.Status]int64) float64 {
	failed, delivered := counts[notification.Failed], counts[notification.Delivered]
	if failed+delivered <= 0 {
		return 0
	}
	return 100 * float64(failed) / float64(failed+delivered)
}

// newPastDueCollector reports the notifications due that were not released to their streams
// in time, up to store.PastDueCap: the cron job that releases them is late or failing.
func newPastDueCollector(st *store.Store, after time.Duration, now func() time.Time) collector {
	return collectorFunc{pastDueDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		n, err := st.CountPastDue(ctx, now().Add(-after))
		if err != nil {
			return err
		}
		ch <- prometheus.MustNewConstMetric(pastDueDesc, prometheus.GaugeValue, float64(n))
		return nil
	}}
}

// newRollupCollector reports how many changes to the maintained status counters wait for the
// Roller: every status count and failure rate adds them up, so a backlog slows scrapes down.
func newRollupCollector(st *store.Store) collector {
	return collectorFunc{changesPendingDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		n, err := st.CountPendingChanges(ctx)
		if err != nil {
			return err
		}
		ch <- prometheus.MustNewConstMetric(changesPendingDesc, prometheus.GaugeValue, float64(n))
		return nil
	}}
}
