// Package metrics owns what Pulse exports to Prometheus: the metrics function's exporter, which
// computes every metric at scrape time from Redis and PostgreSQL, so that functions that scale
// to zero lose nothing.
//
// An Exporter is a set of small collectors, each reading one thing (the streams, the
// dead-letter streams, the attempt counters, the latency histograms, the status counts, the
// failure rate, the past-due count, the status-count changes waiting to be rolled up). A
// scrape runs them all at once under a timeout, and each reports
// pulse_scrape_collector_success and pulse_scrape_collector_duration_seconds: a collector that
// fails or runs out of time is reported as such and the others are still served. The exporter
// serves from a private registry, with the Go and process collectors beside it.
//
// # Queue length
//
// A priority's stream is read by the stream source's consumer group (PULSE_STREAM_GROUP). An
// entry is not delivered yet while the group has not read it (the group's lag) or a consumer
// has read it without acknowledging it (the group's pending entries), so pulse_queue_length is
// lag + pending, and pulse_queue_oldest_age_seconds is the age of the oldest of those entries,
// read from its id, whose first part is the millisecond it was added. Entries the group has
// acknowledged and that are not trimmed yet are not counted. While the group does not exist
// (the source has not started yet, or lost it and will create it again from the first entry)
// every entry of the stream counts. When Redis cannot tell the lag (entries deleted with XDEL
// after the group's position) the entries after the group's position are counted with XRANGE,
// up to maxLagScan.
//
// # Counting ten million notifications
//
// pulse_notifications_by_status must stay cheap however many rows the table holds, and
// count(*) over it is not. Counting the states a notification passes through via their
// partial indexes is not enough either: telling scheduled from retrying, or checking the
// visibility of recently changed rows, reads a heap page per row, half a second for fifteen
// thousand rows spread over a large table, and a scheduled campaign can hold a million. So
// every state is read from counters that PostgreSQL maintains itself (migration 002,
// store.StatusCounts).
//
// The counters are exact and the hot path never waits for them. Statement-level triggers with
// transition tables append each statement's net change, one row per status, channel and
// minute finished, to an insert-only table without indexes; no writer ever updates a shared
// counter row, so ingest's concurrent batch inserts and the deliver functions' updates do not
// serialise, and a batch of a thousand rows costs a change row or two, not a thousand. A
// Roller rolls the changes up into the counters every few seconds, outside scrapes, and
// vacuums the two small tables after a big round; readers add counters and pending changes in
// one statement, so a roll-up never changes what they see and a late one only makes reading a
// little slower (pulse_notification_count_changes_pending shows how much is waiting). The
// triggers cost the hot path nothing measurable (store's BenchmarkCountTriggers).
//
// Rejected: estimates (pg_class.reltuples minus the states counted exactly) cannot tell
// delivered from failed, lag an autovacuum behind and give no failure rate over a window; one
// counter row per status would queue every transaction behind the one holding it; sharded
// counter rows still make the writers of a shard wait on each other, and deadlock when two
// multi-statement transactions touch two states in opposite orders.
//
// The counters of finished notifications keep the minute they finished in for the minutes of
// the failure window, so pulse_notification_failure_rate reads a few hundred rows too; its
// window is rounded out to whole minutes. pulse_notifications_past_due reads the partial index
// of scheduled and retrying rows by due time, so it costs a heap page per past-due row
// (normally none) and stops counting at store.PastDueCap (1000).
//
// # Status page
//
// The metrics function also serves a read-only HTML status page at StatusPath for operators
// (html/template, no scripts, reloading itself every ten seconds): each stream's backlog,
// pending entries, oldest entry and dead letters, the status counts, the failure rate per
// channel, the past-due count and the latest failed notifications, each linked to its
// timeline at TimelinePath. It reads through the same functions and store statements as a
// scrape, plus one indexed page of failed notifications (store.LatestFailures), and reuses
// what it read for Config.StatusCacheFor, so open tabs cost no more than a scrape every few
// seconds. Recipients are masked (notification.MaskRecipient), bodies are never read, and
// error texts are cut short. A datastore that cannot be read makes the page a 503 that says
// which one.
//
// The package does not decide what the deliver functions record: its subpackage recorder (kept
// apart so the deliver functions do not link the Prometheus client) writes the attempt counters
// and latency histograms this package exports.
package metrics
