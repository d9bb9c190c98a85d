package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pulse-knative/pulse/pkg/batch"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// commitTimeout bounds one shared transaction and the XADDs that follow it.
const commitTimeout = 10 * time.Second

// Committer commits the notifications of concurrent requests in shared transactions (group
// commit, see pkg/batch), then hands the queued ones to their streams in one pipelined round
// trip.
type Committer struct {
	store   *store.Store
	queue   *queue.Queue
	logger  *slog.Logger
	batcher *batch.Batcher[store.NewNotification, store.Accepted]
}

// NewCommitter returns a committer that puts at most maxBatch notifications in a transaction
// and keeps up to workers transactions in flight.
func NewCommitter(st *store.Store, q *queue.Queue, logger *slog.Logger, maxBatch, workers int) *Committer {
	c := &Committer{store: st, queue: q, logger: logger}
	c.batcher = batch.New(context.Background(), c.commit, maxBatch, workers)
	// A value PostgreSQL refuses fails only the request that sent it.
	c.batcher.Isolate(func(err error) bool { return errors.Is(err, store.ErrInvalidInput) })
	return c
}

// Start starts the committer.
func (c *Committer) Start() { c.batcher.Start() }

// Stop finishes the transactions already asked for. Call it after the HTTP server has shut
// down, so nothing asks any more.
func (c *Committer) Stop() { c.batcher.Stop() }

// Commit stores items and enqueues the queued ones, sharing a transaction with concurrent
// callers. It returns once the transaction has committed (or failed). Items are stored all or
// none; an error wrapping store.ErrInvalidInput means PostgreSQL refused one of them, and the
// callers that shared the transaction are not affected.
func (c *Committer) Commit(ctx context.Context, items []store.NewNotification) ([]store.Accepted, error) {
	accepted, err := c.batcher.Do(ctx, items...)
	if err != nil {
		return nil, fmt.Errorf("commit notifications: %w", err)
	}
	return accepted, nil
}

func (c *Committer) commit(ctx context.Context, items []store.NewNotification) ([]store.Accepted, error) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	accepted, err := c.store.Insert(ctx, items)
	if err != nil {
		return nil, err
	}
	// The rows are committed: from here on every request gets its 2xx. A failed XADD only
	// delays delivery until cron's recover job re-enqueues the rows that stay queued.
	entries := make([]queue.Entry, 0, len(accepted))
	for _, a := range accepted {
		if a.Status == notification.Queued && !a.Duplicate {
			entries = append(entries, queue.Entry{NotificationID: a.ID, Channel: string(a.Channel), Priority: string(a.Priority)})
		}
	}
	if err := c.queue.Enqueue(ctx, entries); err != nil {
		c.logger.Warn("enqueue after commit failed; cron recover will re-enqueue", "count", len(entries), "error", err)
	}
	return accepted, nil
}
