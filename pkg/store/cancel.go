package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// Cancel moves the notification id to cancelled when it is scheduled, queued or retrying, and
// returns it as it now is. When it is in any other state nothing changes: Cancel returns it as
// it is with an error wrapping notification.ErrNotCancellable. notification.ErrNotFound means
// there is none. A stream entry left behind for a cancelled notification is harmless: deliver
// claims only queued rows.
func (s *Store) Cancel(ctx context.Context, id string) (notification.Notification, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return notification.Notification{}, notification.ErrNotFound
	}
	// The row may move between the UPDATE and the look-up that explains why it did not match,
	// for instance from sending back to retrying: then try again.
	for range 3 {
		now := s.now()
		n, err := scanNotification(s.pool.QueryRow(ctx, `
			update notifications
			set status = 'cancelled', cancelled_at = $2, finished_at = $2, next_attempt_at = null, updated_at = $2
			where id = $1 and status in ('scheduled', 'queued', 'retrying')
			returning `+columns, uid, now))
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return n, fmt.Errorf("cancel notification %s: %w", id, unavailable(err))
		}
		n, err = s.Get(ctx, id)
		if err != nil {
			return n, err
		}
		switch {
		case n.Status == notification.Sending:
			return n, fmt.Errorf("%w: notification %s is being sent right now (attempt %d)", notification.ErrNotCancellable, id, n.Attempts)
		case n.Status.Terminal():
			return n, fmt.Errorf("%w: notification %s is already %s", notification.ErrNotCancellable, id, n.Status)
		}
	}
	return notification.Notification{}, fmt.Errorf("cancel notification %s: it kept changing state", id)
}
