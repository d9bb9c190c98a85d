// Package streamsource owns the stream source: it reads one priority's Redis stream as a
// consumer of a consumer group and POSTs one CloudEvent (dev.pulse.notification.dispatch,
// binary mode) per entry to a sink, the deliver function of that priority.
//
// Delivery is at least once. An entry is acknowledged only after the sink answered 2xx; an
// entry whose send failed stays pending and is claimed again, by this consumer or another,
// once it has been idle longer than the reclaim time, until it has been delivered
// MaxDeliveries times and goes to the dead-letter stream. A lost group is created again from
// the first entry. Duplicates are harmless because the deliver function claims each
// notification with a conditional UPDATE; PostgreSQL, not this package, is the truth.
//
// It does not decide what is enqueued (ingest and cron do), nor what a dispatch means (the
// deliver function does), and it never destroys its group.
package streamsource
