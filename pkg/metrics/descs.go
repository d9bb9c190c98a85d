package metrics

import "github.com/prometheus/client_golang/prometheus"

// The descriptors of every metric family the exporter reports, built once.
var (
	// pulse_notifications_by_status
	byStatusDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "notifications", "by_status"),
		"Notifications stored, by state: scheduled, queued, sending, retrying, delivered, failed, cancelled, expired.",
		[]string{"status"}, nil)
	// pulse_notification_failure_rate
	failureRateDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "notification", "failure_rate"),
		"Percentage (0-100) of the notifications that finished delivered or failed within the failure window (PULSE_METRICS_FAILURE_WINDOW, rounded out to whole minutes) that failed, by channel; 0 when none finished.",
		[]string{"channel"}, nil)
	// pulse_notifications_past_due
	pastDueDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "notifications", "past_due"),
		"Scheduled or retrying notifications whose send time or next attempt came more than PULSE_METRICS_PAST_DUE_AFTER ago and that are still not released to their stream, counted up to 1000.",
		nil, nil)
	// pulse_notification_count_changes_pending
	changesPendingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "notification", "count_changes_pending"),
		"Changes to the maintained counts of notifications not rolled up yet; the metrics function rolls them up every PULSE_METRICS_ROLLUP_INTERVAL.",
		nil, nil)
	// pulse_queue_length
	queueLengthDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "length"),
		"Entries of a priority's stream not delivered yet: not read by the stream source's consumer group (its lag) or read and not acknowledged (pending).",
		[]string{"queue_name"}, nil)
	// pulse_celery_queue_length: the old exporter's name for pulse_queue_length, kept so that its
	// dashboards and alert rules (pulse_celery_queue_length{queue_name="high_priority"} > 1000)
	// keep working.
	celeryQueueLengthDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "celery_queue", "length"),
		"Deprecated alias of pulse_queue_length, same labels and values, kept for the old system's dashboards and alert rules.",
		[]string{"queue_name"}, nil)
	// pulse_queue_oldest_age_seconds
	queueOldestAgeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "oldest_age_seconds"),
		"Age of the oldest entry of a priority's stream not delivered yet; 0 when there is none.",
		[]string{"queue_name"}, nil)
	// pulse_dead_letter_length
	deadLetterLengthDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "dead_letter", "length"),
		"Entries in a priority's dead-letter stream: stream entries the stream source gave up on after too many failed deliveries.",
		[]string{"queue_name"}, nil)
	// pulse_delivery_attempts_total
	attemptsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "delivery", "attempts_total"),
		"Delivery attempts by channel, priority and outcome: delivered, transient (retried later) or permanent (failed).",
		[]string{"channel", "priority", "outcome"}, nil)
	// pulse_notification_delivery_latency_seconds
	latencyDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "notification", "delivery_latency_seconds"),
		"Time from a notification's request (or its send_at) to its delivery, by channel and priority.",
		[]string{"channel", "priority"}, nil)
	// pulse_scrape_collector_success
	collectorSuccessDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "scrape", "collector_success"),
		"Whether a collector of the metrics function succeeded in the last scrape (1) or failed or ran out of time (0).",
		[]string{"collector"}, nil)
	// pulse_scrape_collector_duration_seconds
	collectorDurationDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "scrape", "collector_duration_seconds"),
		"How long a collector of the metrics function took in the last scrape.",
		[]string{"collector"}, nil)
)
