package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// commitTimeout bounds one shared transaction and the XADDs that follow it.
const commitTimeout = 10 * time.Second

// Committer commits the notifications of concurrent requests in shared transactions. While one
// transaction commits, the requests that arrive wait and go into the next, so the number of
// commits per second stays near what PostgreSQL can flush while the number of notifications
// per commit grows with load. No request waits for a timer.
type Committer struct {
	store    *store.Store
	queue    *queue.Queue
	logger   *slog.Logger
	maxBatch int
	workers  int
	jobs     chan *commitJob
	wg       sync.WaitGroup
}

type commitJob struct {
	items []store.NewNotification
	done  chan commitResult
}

type commitResult struct {
	accepted []store.Accepted
	err      error
}

// NewCommitter returns a committer that puts at most maxBatch notifications in a transaction
// and keeps up to workers transactions in flight.
func NewCommitter(st *store.Store, q *queue.Queue, logger *slog.Logger, maxBatch, workers int) *Committer {
	return &Committer{store: st, queue: q, logger: logger, maxBatch: maxBatch, workers: workers,
		jobs: make(chan *commitJob, maxBatch)}
}

// Start starts the committer's workers. They stop when Stop is called.
func (c *Committer) Start() {
	for range c.workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.work()
		}()
	}
}

// Stop waits for the jobs already submitted to finish and stops the workers. Call it after the
// HTTP server has shut down, so nothing submits any more.
func (c *Committer) Stop() {
	close(c.jobs)
	c.wg.Wait()
}

// Commit stores items and enqueues the queued ones, sharing a transaction with concurrent
// callers. It returns once the transaction has committed (or failed).
func (c *Committer) Commit(ctx context.Context, items []store.NewNotification) ([]store.Accepted, error) {
	job := &commitJob{items: items, done: make(chan commitResult, 1)}
	select {
	case c.jobs <- job:
	case <-ctx.Done():
		return nil, fmt.Errorf("commit notifications: %w", ctx.Err())
	}
	// Once submitted the job runs to the end, whatever the caller does: wait for its answer.
	r := <-job.done
	return r.accepted, r.err
}

func (c *Committer) work() {
	for first := range c.jobs {
		jobs := []*commitJob{first}
		n := len(first.items)
	gather:
		for n < c.maxBatch {
			select {
			case j, ok := <-c.jobs:
				if !ok {
					break gather
				}
				jobs = append(jobs, j)
				n += len(j.items)
			default:
				break gather
			}
		}
		c.commit(jobs, n)
	}
}

func (c *Committer) commit(jobs []*commitJob, n int) {
	items := make([]store.NewNotification, 0, n)
	for _, j := range jobs {
		items = append(items, j.items...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	accepted, err := c.store.Insert(ctx, items)
	if err != nil {
		for _, j := range jobs {
			j.done <- commitResult{err: err}
		}
		return
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
	for _, j := range jobs {
		j.done <- commitResult{accepted: accepted[:len(j.items):len(j.items)]}
		accepted = accepted[len(j.items):]
	}
}
