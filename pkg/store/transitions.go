package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// ErrNotClaimable means the notification is not queued: another delivery has it, or it has
// finished, been cancelled or expired. The dispatch that asked for it is a duplicate.
var ErrNotClaimable = errors.New("notification is not queued")

// ErrLeaseLost means the claim a delivery held was taken back (its lease ran out and cron
// handed the notification to another attempt) before the outcome could be recorded.
var ErrLeaseLost = errors.New("claim on notification was lost")

// Claim moves a queued notification to sending, counts the attempt and leases it until
// now+lease. It returns ErrNotClaimable when the notification is not queued, and ErrNotFound
// when there is none; a queued notification whose expires_at has passed is moved to expired
// and reported as not claimable.
func (s *Store) Claim(ctx context.Context, id string, lease time.Duration) (notification.Notification, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return notification.Notification{}, ErrNotFound
	}
	now := s.now()
	n, err := scanNotification(s.pool.QueryRow(ctx, `
		update notifications
		set status = 'sending', attempts = attempts + 1, sending_at = $2, lease_until = $3,
			next_attempt_at = null, updated_at = $2
		where id = $1 and status = 'queued' and (expires_at is null or expires_at > $2)
		returning `+columns, uid, now, now.Add(lease)))
	if err == nil {
		return n, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return n, fmt.Errorf("claim notification %s: %w", id, unavailable(err))
	}
	// Not claimable: expire it if that is why, and tell a missing row from a handled one.
	var status notification.Status
	err = s.pool.QueryRow(ctx, `
		with expired as (
			update notifications
			set status = 'expired', expired_at = $2, finished_at = $2, updated_at = $2
			where id = $1 and status = 'queued' and expires_at <= $2
			returning status
		)
		select status from expired
		union all
		select status from notifications where id = $1 and not exists (select 1 from expired)`, uid, now).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return n, ErrNotFound
	case err != nil:
		return n, fmt.Errorf("claim notification %s: %w", id, unavailable(err))
	}
	return n, ErrNotClaimable
}

// Attempt is the outcome of one delivery attempt, to be recorded.
type Attempt struct {
	NotificationID string
	// Attempt is the attempts count the claim returned; the outcome is recorded only while the
	// notification is still sending under that claim.
	Attempt int
	// Status is the state the notification moves to: delivered, retrying, failed or expired.
	Status notification.Status
	// NextAttemptAt is when a retrying notification is due again.
	NextAttemptAt     *time.Time
	Outcome           string // delivered, transient or permanent
	StatusCode        int
	Error             string
	ProviderMessageID string
	StartedAt         time.Time
	Duration          time.Duration
}

// Record stores an attempt's row and moves the notification to the attempt's state, in one
// statement. It returns ErrLeaseLost when the notification is no longer sending under this
// attempt's claim; the attempt row is stored all the same, since the send happened.
func (s *Store) Record(ctx context.Context, a Attempt) error {
	uid, err := uuid.Parse(a.NotificationID)
	if err != nil {
		return ErrNotFound
	}
	now := s.now()
	var moved int
	err = s.pool.QueryRow(ctx, `
		with moved as (
			update notifications
			set status = $3, next_attempt_at = $4, lease_until = null, last_error = $5,
				provider_message_id = case when $6 = '' then provider_message_id else $6 end,
				delivered_at = case when $3 = 'delivered' then $7 else delivered_at end,
				failed_at = case when $3 = 'failed' then $7 else failed_at end,
				expired_at = case when $3 = 'expired' then $7 else expired_at end,
				finished_at = case when $3 in ('delivered', 'failed', 'expired') then $7 end,
				updated_at = $7
			where id = $1 and status = 'sending' and attempts = $2
			returning 1
		), attempt as (
			insert into delivery_attempts (notification_id, attempt, outcome, status_code, error,
				provider_message_id, started_at, duration_ms)
			values ($1, $2, $8, $9, $5, $6, $10, $11)
		)
		select count(*) from moved`,
		uid, a.Attempt, string(a.Status), timestamptz(a.NextAttemptAt), a.Error, a.ProviderMessageID, now,
		a.Outcome, a.StatusCode, a.StartedAt, float64(a.Duration)/float64(time.Millisecond)).Scan(&moved)
	if err != nil {
		return fmt.Errorf("record attempt %d of notification %s: %w", a.Attempt, a.NotificationID, unavailable(err))
	}
	if moved == 0 {
		return ErrLeaseLost
	}
	return nil
}

// AttemptRow is one stored delivery attempt.
type AttemptRow struct {
	Attempt           int           `json:"attempt"`
	Outcome           string        `json:"outcome"`
	StatusCode        int           `json:"status_code,omitempty"`
	Error             string        `json:"error,omitempty"`
	ProviderMessageID string        `json:"provider_message_id,omitempty"`
	StartedAt         time.Time     `json:"started_at"`
	Duration          time.Duration `json:"duration_ns"`
}

// Attempts returns the delivery attempts of a notification, oldest first.
func (s *Store) Attempts(ctx context.Context, id string) ([]AttemptRow, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `
		select attempt, outcome, status_code, error, provider_message_id, started_at, duration_ms
		from delivery_attempts where notification_id = $1 order by id`, uid)
	if err != nil {
		return nil, fmt.Errorf("list attempts of notification %s: %w", id, unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AttemptRow, error) {
		var a AttemptRow
		var ms float64
		err := row.Scan(&a.Attempt, &a.Outcome, &a.StatusCode, &a.Error, &a.ProviderMessageID, &a.StartedAt, &ms)
		a.Duration = time.Duration(ms * float64(time.Millisecond))
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of notification %s: %w", id, unavailable(err))
	}
	return out, nil
}
