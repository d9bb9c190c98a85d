package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// The jobs, by the name a PingSource's data gives them ({"job":"release"}).
const (
	JobRelease = "release"
	JobRecover = "recover"
	JobExpire  = "expire"
	JobPurge   = "purge"
	JobTrim    = "trim"
)

// Jobs lists every job's name.
var Jobs = []string{JobRelease, JobRecover, JobExpire, JobPurge, JobTrim}

// ErrUnknownJob means no job has the name asked for.
var ErrUnknownJob = errors.New("unknown job")

// Report says what one run of a job did.
type Report struct {
	// Job is the job's name.
	Job string `json:"job"`
	// Counts are the rows or entries the run moved, deleted or enqueued, by what happened to
	// them, e.g. {"released": 12}.
	Counts map[string]int `json:"counts"`
	// Batches is the number of batches the run went through.
	Batches int `json:"batches"`
	// Complete is false when the run stopped with work left, its budget spent: the next tick
	// goes on.
	Complete bool `json:"complete"`
	// Duration is how long the run took.
	Duration time.Duration `json:"duration_ns"`
}

func (r *Report) add(what string, n int) { r.Counts[what] += n }

// Config configures a Scheduler.
type Config struct {
	// Store is where notifications are moved and deleted.
	Store *store.Store
	// Redis holds the streams.
	Redis redis.UniversalClient
	// Keys builds the stream keys.
	Keys queue.Keys
	// BatchSize bounds the rows one statement moves or deletes; zero means 500.
	BatchSize int
	// Budget bounds how long a run keeps starting batches; zero means 20 s.
	Budget time.Duration
	// RecoverQueuedAfter is how long a notification may stay queued before it is added to its
	// stream again.
	RecoverQueuedAfter time.Duration
	// Retention is how long finished notifications are kept.
	Retention time.Duration
	// DeadLetterRetention is how long the trim job keeps dead-letter entries; zero keeps them.
	DeadLetterRetention time.Duration
	// DeadLetterMaxLen is how many entries the trim job leaves in each dead-letter stream;
	// zero means no bound.
	DeadLetterMaxLen int64
	// Now is the clock durations are measured with and stream entries stamped with; nil means
	// the store's. The store's own clock decides what is due.
	Now func() time.Time
}

// Scheduler runs the cron jobs.
type Scheduler struct {
	store        *store.Store
	redis        redis.UniversalClient
	queue        *queue.Queue
	keys         queue.Keys
	batchSize    int
	budget       time.Duration
	recoverAfter time.Duration
	retention    time.Duration
	deadAge      time.Duration
	deadMaxLen   int64
	now          func() time.Time
	jobs         map[string]func(context.Context, *Report) error
}

// New returns a Scheduler.
func New(cfg Config) *Scheduler {
	s := &Scheduler{store: cfg.Store, redis: cfg.Redis, keys: cfg.Keys,
		batchSize: cfg.BatchSize, budget: cfg.Budget, recoverAfter: cfg.RecoverQueuedAfter,
		retention: cfg.Retention, deadAge: cfg.DeadLetterRetention, deadMaxLen: cfg.DeadLetterMaxLen, now: cfg.Now}
	if s.now == nil {
		s.now = cfg.Store.Now
	}
	if s.batchSize <= 0 {
		s.batchSize = 500
	}
	if s.budget <= 0 {
		s.budget = 20 * time.Second
	}
	s.queue = queue.New(cfg.Redis, cfg.Keys, s.now)
	s.jobs = map[string]func(context.Context, *Report) error{
		JobRelease: s.release,
		JobRecover: s.recover,
		JobExpire:  s.expire,
		JobPurge:   s.purge,
		JobTrim:    s.trim,
	}
	return s
}

// Run runs the job named job once and reports what it did. The report is filled in as far as
// the run got even when it returns an error, and an error wraps ErrUnknownJob when there is no
// such job.
//
// A run starts no batch after its budget is spent. ctx should outlive the budget by the time
// one batch takes: a release cut between its UPDATE and its XADDs leaves rows queued without
// an entry until recover adds them, after PULSE_RECOVER_QUEUED_AFTER. Handler runs jobs on a
// context the caller going away does not cancel.
func (s *Scheduler) Run(ctx context.Context, job string) (Report, error) {
	r := Report{Job: job, Counts: map[string]int{}}
	run, ok := s.jobs[job]
	if !ok {
		return r, fmt.Errorf("%w %q: want one of %s", ErrUnknownJob, job, strings.Join(Jobs, ", "))
	}
	start := s.now()
	err := run(ctx, &r)
	r.Duration = s.now().Sub(start)
	if err != nil {
		return r, fmt.Errorf("run job %s: %w", job, err)
	}
	return r, nil
}

// batches calls batch until it comes back short (fewer than the batch size), fails, or the
// budget or ctx ends.
func (s *Scheduler) batches(ctx context.Context, r *Report, batch func(context.Context) (int, error)) error {
	return s.pacedBatches(ctx, r, false, batch)
}

// pacedBatches is batches; paced, it waits after each full batch as long as the batch took,
// so the job keeps at most half of one PostgreSQL backend busy and deliveries running beside
// it see a steady load rather than a burst. The waits count against the budget.
func (s *Scheduler) pacedBatches(ctx context.Context, r *Report, paced bool, batch func(context.Context) (int, error)) error {
	budget, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	r.Complete = false
	for {
		start := time.Now()
		n, err := batch(ctx)
		r.Batches++
		if err != nil {
			return err
		}
		if n < s.batchSize {
			r.Complete = true
			return nil
		}
		if paced {
			pause := time.NewTimer(time.Since(start))
			select {
			case <-pause.C:
			case <-budget.Done():
				pause.Stop()
			}
		}
		if budget.Err() != nil {
			return nil
		}
	}
}

func entries(due []store.Due) []queue.Entry {
	out := make([]queue.Entry, len(due))
	for i, d := range due {
		out[i] = queue.Entry{NotificationID: d.ID, Channel: string(d.Channel), Priority: string(d.Priority)}
	}
	return out
}

// release moves due notifications to queued and adds them to their streams, committing each
// batch before its XADDs so a deliver function never reads an entry whose row is not queued
// yet. When an XADD fails the rows stay queued without an entry and recover adds them later;
// checking that Redis answers before the first batch keeps an outage from doing that to more
// rows than one batch.
func (s *Scheduler) release(ctx context.Context, r *Report) error {
	r.Counts["released"] = 0
	if err := s.redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping Redis before releasing: %w", queue.Unavailable(err))
	}
	return s.batches(ctx, r, func(ctx context.Context) (int, error) {
		due, err := s.store.Release(ctx, s.batchSize)
		if err != nil {
			return 0, err
		}
		if err := s.queue.Enqueue(ctx, entries(due)); err != nil {
			r.add("unenqueued", len(due))
			return len(due), fmt.Errorf("add released notifications to their streams (they stay queued for recover): %w", err)
		}
		r.add("released", len(due))
		return len(due), nil
	})
}

// recover takes back notifications whose lease ran out, then adds those queued too long to
// their streams again. The first needs only PostgreSQL, so a Redis outage does not stop it.
func (s *Scheduler) recover(ctx context.Context, r *Report) error {
	r.Counts["requeued"], r.Counts["retrying"], r.Counts["failed"] = 0, 0, 0
	lapsedErr := s.batches(ctx, r, func(ctx context.Context) (int, error) {
		l, err := s.store.RecoverLapsed(ctx, s.batchSize)
		r.add("retrying", l.Retrying)
		r.add("failed", l.Failed)
		return l.Retrying + l.Failed, err
	})
	complete := r.Complete
	requeueErr := s.batches(ctx, r, func(ctx context.Context) (int, error) {
		due, err := s.store.Requeue(ctx, s.recoverAfter, s.batchSize, func(ctx context.Context, due []store.Due) error {
			return s.queue.Enqueue(ctx, entries(due))
		})
		r.add("requeued", len(due))
		return len(due), err
	})
	r.Complete = r.Complete && complete
	return errors.Join(lapsedErr, requeueErr)
}

func (s *Scheduler) expire(ctx context.Context, r *Report) error {
	r.Counts["expired"] = 0
	return s.batches(ctx, r, func(ctx context.Context) (int, error) {
		n, err := s.store.Expire(ctx, s.batchSize)
		r.add("expired", n)
		return n, err
	})
}

// purge is paced: it runs every minute beside full-rate delivery, and deleting a minute of
// traffic flat out would hold a core for seconds.
func (s *Scheduler) purge(ctx context.Context, r *Report) error {
	r.Counts["purged"] = 0
	return s.pacedBatches(ctx, r, true, func(ctx context.Context) (int, error) {
		n, err := s.store.Purge(ctx, s.retention, s.batchSize)
		r.add("purged", n)
		return n, err
	})
}

// trim trims each priority's stream in one script run, then bounds its dead-letter stream by
// age and length.
func (s *Scheduler) trim(ctx context.Context, r *Report) error {
	priorities := make([]string, len(notification.Priorities))
	for i, p := range notification.Priorities {
		priorities[i] = string(p)
	}
	sort.Strings(priorities)
	var errs []error
	for _, p := range priorities {
		n, err := queue.Trim(ctx, s.redis, s.keys.Stream(p))
		r.Batches++
		r.add("trimmed", int(n))
		if err != nil {
			errs = append(errs, err)
		}
		n, err = queue.TrimDeadLetters(ctx, s.redis, s.keys, p, s.deadMaxLen, s.deadAge, s.now())
		r.add("dead_letters_trimmed", int(n))
		if err != nil {
			errs = append(errs, err)
		}
	}
	r.Complete = len(errs) == 0
	return errors.Join(errs...)
}
