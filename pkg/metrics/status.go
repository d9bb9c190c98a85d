package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// statusCollector reports how many notifications are in each state.
type statusCollector struct {
	store  *store.Store
	counts *prometheus.Desc
}

func newStatusCollector(st *store.Store) *statusCollector {
	return &statusCollector{
		store: st,
		counts: prometheus.NewDesc(prometheus.BuildFQName(namespace, "notifications", "by_status"),
			"Notifications stored, by state: scheduled, queued, sending, retrying, delivered, failed, cancelled, expired.",
			[]string{"status"}, nil),
	}
}

// Describe implements collector.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.counts
}

// Update implements collector.
func (c *statusCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	counts, err := c.store.StatusCounts(ctx)
	if err != nil {
		return err
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.counts, prometheus.GaugeValue, float64(n), string(status))
	}
	return nil
}

// failureRateCollector reports, per channel, the percentage of the deliveries that finished
// within the failure window that failed.
type failureRateCollector struct {
	store  *store.Store
	window time.Duration
	now    func() time.Time
	rate   *prometheus.Desc
}

func newFailureRateCollector(st *store.Store, window time.Duration, now func() time.Time) *failureRateCollector {
	return &failureRateCollector{
		store: st, window: window, now: now,
		rate: prometheus.NewDesc(prometheus.BuildFQName(namespace, "notification", "failure_rate"),
			"Percentage (0-100) of the notifications that finished delivered or failed within the failure window (PULSE_METRICS_FAILURE_WINDOW, rounded out to whole minutes) that failed, by channel; 0 when none finished.",
			[]string{"channel"}, nil),
	}
}

// Describe implements collector.
func (c *failureRateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rate
}

// Update implements collector. Every channel is reported, 0 when none of its notifications
// finished within the window, so an alert on the rate never sees it vanish.
func (c *failureRateCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	finished, err := c.store.FinishedSince(ctx, c.now().Add(-c.window))
	if err != nil {
		return err
	}
	channels := slices.Clone(notification.Channels)
	for chn := range finished {
		if !slices.Contains(channels, chn) {
			channels = append(channels, chn)
		}
	}
	for _, chn := range channels {
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, FailureRate(finished[chn]), string(chn))
	}
	return nil
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

// pastDueCollector reports the notifications due that were not released to their streams in
// time: the cron job that releases them is late or failing.
type pastDueCollector struct {
	store *store.Store
	after time.Duration
	now   func() time.Time
	count *prometheus.Desc
}

func newPastDueCollector(st *store.Store, after time.Duration, now func() time.Time) *pastDueCollector {
	return &pastDueCollector{
		store: st, after: after, now: now,
		count: prometheus.NewDesc(prometheus.BuildFQName(namespace, "notifications", "past_due"),
			"Scheduled or retrying notifications whose send time or next attempt came more than PULSE_METRICS_PAST_DUE_AFTER ago and that are still not released to their stream, counted up to 1000.",
			nil, nil),
	}
}

// Describe implements collector.
func (c *pastDueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
}

// Update implements collector.
func (c *pastDueCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	n, err := c.store.CountPastDue(ctx, c.now().Add(-c.after))
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(n))
	return nil
}

// rollupCollector reports how many changes to the maintained status counters wait for the
// Roller: every status count and failure rate adds them up, so a backlog slows scrapes down.
type rollupCollector struct {
	store   *store.Store
	pending *prometheus.Desc
}

func newRollupCollector(st *store.Store) *rollupCollector {
	return &rollupCollector{
		store: st,
		pending: prometheus.NewDesc(prometheus.BuildFQName(namespace, "notification", "count_changes_pending"),
			"Changes to the maintained counts of notifications not rolled up yet; the metrics function rolls them up every PULSE_METRICS_ROLLUP_INTERVAL.",
			nil, nil),
	}
}

// Describe implements collector.
func (c *rollupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
}

// Update implements collector.
func (c *rollupCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	n, err := c.store.CountPendingChanges(ctx)
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	return nil
}
