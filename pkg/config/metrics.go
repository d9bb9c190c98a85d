package config

import (
	"fmt"
	"time"
)

// Metrics configures functions/metrics, which computes Pulse's Prometheus metrics from Redis
// and PostgreSQL at scrape time.
type Metrics struct {
	Database
	Redis
	Server
	Log

	// ScrapeTimeout bounds the work of one scrape. A collector still running when it ends
	// reports pulse_scrape_collector_success 0 and its metrics are left out; the others are
	// served. A shorter X-Prometheus-Scrape-Timeout-Seconds header from Prometheus wins. Keep
	// it below Prometheus's scrape_timeout and PULSE_HTTP_WRITE_TIMEOUT.
	ScrapeTimeout time.Duration `envconfig:"PULSE_METRICS_SCRAPE_TIMEOUT" default:"5s"`
	// FailureWindow is the window pulse_notification_failure_rate covers: the percentage of
	// the deliveries that finished within it that failed. It is rounded out to whole minutes.
	FailureWindow time.Duration `envconfig:"PULSE_METRICS_FAILURE_WINDOW" default:"15m"`
	// PastDueAfter is how long a scheduled or retrying notification may be due without being
	// released to its stream before pulse_notifications_past_due counts it.
	PastDueAfter time.Duration `envconfig:"PULSE_METRICS_PAST_DUE_AFTER" default:"1m"`
	// RollupInterval is how often the function rolls the changes recorded to the maintained
	// status counters up into them (see pkg/metrics), working off any backlog in batches.
	// Counts are exact whether or not it has run; rolling up keeps reading them cheap.
	RollupInterval time.Duration `envconfig:"PULSE_METRICS_ROLLUP_INTERVAL" default:"10s"`
	// RollupBatch bounds the changes one roll-up statement moves, and so how long it holds
	// its locks.
	RollupBatch int `envconfig:"PULSE_METRICS_ROLLUP_BATCH" default:"10000"`
	// Group is the stream source's consumer group: its lag and pending entries make the
	// queue length. It must match the stream source's PULSE_STREAM_GROUP.
	Group string `envconfig:"PULSE_STREAM_GROUP" default:"pulse-deliver"`
}

func (c *Metrics) validate() error {
	if c.ScrapeTimeout <= 0 || c.ScrapeTimeout >= c.WriteTimeout {
		return fmt.Errorf("PULSE_METRICS_SCRAPE_TIMEOUT (%s) must be positive and shorter than PULSE_HTTP_WRITE_TIMEOUT (%s)", c.ScrapeTimeout, c.WriteTimeout)
	}
	if c.FailureWindow < time.Minute {
		return fmt.Errorf("PULSE_METRICS_FAILURE_WINDOW (%s) must be at least 1m", c.FailureWindow)
	}
	if c.PastDueAfter < 0 {
		return fmt.Errorf("PULSE_METRICS_PAST_DUE_AFTER must not be negative")
	}
	if c.RollupInterval <= 0 {
		return fmt.Errorf("PULSE_METRICS_ROLLUP_INTERVAL must be positive")
	}
	if c.RollupBatch < 1 {
		return fmt.Errorf("PULSE_METRICS_ROLLUP_BATCH must be positive")
	}
	if c.Group == "" {
		return fmt.Errorf("PULSE_STREAM_GROUP is empty")
	}
	return nil
}
