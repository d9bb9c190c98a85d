package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// The statements of the cron jobs. Each picks at most a batch of rows with FOR UPDATE SKIP
// LOCKED, so two runs at once share the work instead of waiting on each other, and moves them
// with an UPDATE whose WHERE names the states they may leave, so no row moves twice. Each WHERE
// repeats the predicate of the partial index it reads (migrations/001_notifications.sql), so
// a job that finds nothing reads an index that holds only candidates.

// Due is a notification a job hands to its priority's stream.
type Due struct {
	ID       string
	Channel  notification.Channel
	Priority notification.Priority
}

func collectDue(rows pgx.Rows) ([]Due, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Due, error) {
		var d Due
		var id uuid.UUID
		err := row.Scan(&id, &d.Channel, &d.Priority)
		d.ID = id.String()
		return d, err
	})
}

// Release moves up to limit notifications that are due to queued, stamping queued_at: scheduled
// ones whose send_at has come and retrying ones whose next attempt is due. Notifications past
// their expires_at are left to Expire. The change is committed when Release returns, so the
// caller may add the rows to their streams: a deliver function that reads an entry finds its
// row queued.
func (s *Store) Release(ctx context.Context, limit int) ([]Due, error) {
	now := s.now()
	rows, err := s.pool.Query(ctx, `
		with due as (
			select id from notifications
			where status in ('scheduled', 'retrying') and coalesce(next_attempt_at, send_at) <= $1
				and (expires_at is null or expires_at > $1)
			order by coalesce(next_attempt_at, send_at)
			limit $2
			for update skip locked
		)
		update notifications n
		set status = 'queued', queued_at = $1, next_attempt_at = null, updated_at = $1
		from due
		where n.id = due.id and n.status in ('scheduled', 'retrying')
		returning n.id, n.channel, n.priority`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("release due notifications: %w", unavailable(err))
	}
	due, err := collectDue(rows)
	if err != nil {
		return nil, fmt.Errorf("release due notifications: %w", unavailable(err))
	}
	return due, nil
}

// Requeue picks up to limit notifications that have been queued for waited or longer, stamps
// their queued_at anew so the next run does not pick them again before another waited has
// passed, and calls enqueue with them before committing. When enqueue fails nothing changes
// and they are picked again next time. A deliver function that claims one of them meanwhile
// waits for the commit, then claims it as usual.
func (s *Store) Requeue(ctx context.Context, waited time.Duration, limit int, enqueue func(context.Context, []Due) error) ([]Due, error) {
	now := s.now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("requeue waiting notifications: %w", unavailable(err))
	}
	defer tx.Rollback(context.Background())
	rows, err := tx.Query(ctx, `
		with waiting as (
			select id from notifications
			where status = 'queued' and queued_at <= $2
			order by queued_at
			limit $3
			for update skip locked
		)
		update notifications n
		set queued_at = $1, updated_at = $1
		from waiting
		where n.id = waiting.id and n.status = 'queued'
		returning n.id, n.channel, n.priority`, now, now.Add(-waited), limit)
	if err != nil {
		return nil, fmt.Errorf("requeue waiting notifications: %w", unavailable(err))
	}
	due, err := collectDue(rows)
	if err != nil {
		return nil, fmt.Errorf("requeue waiting notifications: %w", unavailable(err))
	}
	if len(due) == 0 {
		return nil, nil
	}
	if err := enqueue(ctx, due); err != nil {
		return nil, fmt.Errorf("requeue %d waiting notifications: %w", len(due), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit requeued notifications: %w", unavailable(err))
	}
	return due, nil
}

// Lapsed counts what RecoverLapsed did.
type Lapsed struct {
	// Retrying is the number of notifications handed back for another attempt, due now.
	Retrying int
	// Failed is the number whose lost attempt was their last.
	Failed int
}

// RecoverLapsed takes back up to limit notifications whose lease ran out while sending: the
// deliver function that claimed them died or hung before recording an outcome. Each goes to
// retrying, due at once, or to failed when the lost attempt was its last. A deliver function
// that records late finds its claim gone (notification.ErrLeaseLost).
func (s *Store) RecoverLapsed(ctx context.Context, limit int) (Lapsed, error) {
	now := s.now()
	rows, err := s.pool.Query(ctx, `
		with lapsed as (
			select id from notifications
			where status = 'sending' and lease_until <= $1
			order by lease_until
			limit $2
			for update skip locked
		)
		update notifications n
		set status = case when n.attempts >= n.max_attempts then 'failed' else 'retrying' end,
			next_attempt_at = case when n.attempts >= n.max_attempts then null else $1 end,
			failed_at = case when n.attempts >= n.max_attempts then $1 else n.failed_at end,
			finished_at = case when n.attempts >= n.max_attempts then $1 end,
			lease_until = null,
			last_error = 'lease ran out during attempt ' || n.attempts || ': no outcome was recorded',
			updated_at = $1
		from lapsed
		where n.id = lapsed.id and n.status = 'sending'
		returning n.status`, now, limit)
	if err != nil {
		return Lapsed{}, fmt.Errorf("recover lapsed notifications: %w", unavailable(err))
	}
	statuses, err := pgx.CollectRows(rows, pgx.RowTo[notification.Status])
	if err != nil {
		return Lapsed{}, fmt.Errorf("recover lapsed notifications: %w", unavailable(err))
	}
	var l Lapsed
	for _, st := range statuses {
		if st == notification.Failed {
			l.Failed++
		} else {
			l.Retrying++
		}
	}
	return l, nil
}

// Expire moves up to limit notifications whose expires_at has passed and that were never
// delivered (scheduled, queued or retrying) to expired, and returns how many it moved.
func (s *Store) Expire(ctx context.Context, limit int) (int, error) {
	now := s.now()
	tag, err := s.pool.Exec(ctx, `
		with gone as (
			select id from notifications
			where expires_at is not null and status in ('scheduled', 'queued', 'retrying') and expires_at <= $1
			order by expires_at
			limit $2
			for update skip locked
		)
		update notifications n
		set status = 'expired', expired_at = $1, finished_at = $1, next_attempt_at = null, updated_at = $1
		from gone
		where n.id = gone.id and n.status in ('scheduled', 'queued', 'retrying')`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("expire notifications: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// Purge deletes up to limit finished notifications (delivered, failed, cancelled or expired)
// that finished more than retention ago, with their delivery attempts, and returns how many
// notifications it deleted.
func (s *Store) Purge(ctx context.Context, retention time.Duration, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `
		with old as (
			select id from notifications
			where finished_at is not null and finished_at < $1
				and status in ('delivered', 'failed', 'cancelled', 'expired')
			order by finished_at
			limit $2
			for update skip locked
		)
		delete from notifications n
		using old
		where n.id = old.id`, s.now().Add(-retention), limit)
	if err != nil {
		return 0, fmt.Errorf("purge finished notifications: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}
