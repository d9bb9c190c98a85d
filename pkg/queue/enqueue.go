package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Entry is one notification handed to its priority's stream.
type Entry struct {
	NotificationID string
	Channel        string
	Priority       string
}

// Queue appends dispatch entries to the priority streams.
type Queue struct {
	client redis.UniversalClient
	keys   Keys
	now    func() time.Time
}

// New returns a queue over client using keys; now stamps each entry's enqueued_at.
func New(client redis.UniversalClient, keys Keys, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{client: client, keys: keys, now: now}
}

// Keys returns the key builder the queue uses.
func (q *Queue) Keys() Keys { return q.keys }

// Enqueue appends one stream entry per item, in one pipelined round trip. An error means some
// entries may not have been added; the caller relies on cron's recover job, which re-enqueues
// notifications that stay queued too long, rather than on retrying here.
func (q *Queue) Enqueue(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	at := strconv.FormatInt(q.now().UnixMilli(), 10)
	pipe := q.client.Pipeline()
	for _, e := range entries {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: q.keys.Stream(e.Priority),
			Values: []string{FieldNotificationID, e.NotificationID, FieldChannel, e.Channel, FieldEnqueuedAt, at},
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("enqueue %d notifications: %w", len(entries), Unavailable(err))
	}
	return nil
}
