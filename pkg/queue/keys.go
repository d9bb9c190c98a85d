package queue

import "fmt"

// Keys builds every Redis key Pulse uses. All keys share the hash tag {prefix}, so a Redis
// Cluster keeps them in one slot and multi-key commands and scripts work.
type Keys struct {
	prefix string
}

// NewKeys returns the key builder for prefix, e.g. "pulse" gives "{pulse}:stream:high".
func NewKeys(prefix string) Keys {
	return Keys{prefix: "{" + prefix + "}"}
}

// Stream is the dispatch stream of a priority ("high" or "low").
func (k Keys) Stream(priority string) string {
	return k.prefix + ":stream:" + priority
}

// DeadLetter is the stream that receives the entries of a priority's stream that kept failing.
func (k Keys) DeadLetter(priority string) string {
	return k.prefix + ":stream:" + priority + ":dead"
}

// Latency is the hash that accumulates the delivery latency histogram of one channel and
// priority: a field per bucket upper bound, plus "sum" and "count".
func (k Keys) Latency(channel, priority string) string {
	return fmt.Sprintf("%s:latency:%s:%s", k.prefix, channel, priority)
}

// Attempts is the hash that counts delivery attempts, one field per "channel:priority:outcome".
func (k Keys) Attempts() string {
	return k.prefix + ":attempts"
}

// RateLimit is the GCRA state of one provider account's shared rate limit.
func (k Keys) RateLimit(channel, account string) string {
	return k.prefix + ":limit:" + channel + ":" + account
}

// Breakers is the hash of circuit breaker states the deliver pods report, one field per
// "channel:account:pod" (see observe.BreakerField).
func (k Keys) Breakers() string {
	return k.prefix + ":breakers"
}

// Throttled is the hash that counts sends held back by a provider account's rate limit, one
// field per "channel:account".
func (k Keys) Throttled() string {
	return k.prefix + ":throttled"
}

// Lock is the key of a named lock, used by jobs that must not run twice at once.
func (k Keys) Lock(name string) string {
	return k.prefix + ":lock:" + name
}

// Stream entry fields, the contract between ingest, cron, the stream source and deliver.
const (
	FieldNotificationID = "notification_id"
	FieldChannel        = "channel"
	FieldEnqueuedAt     = "enqueued_at"
)
