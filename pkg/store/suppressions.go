package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// Address is a recipient of one channel: an email address, phone number, device token or URL.
type Address struct {
	Channel string `json:"channel"`
	Address string `json:"address"`
}

// Suppression is an address a provider said does not exist or has opted out. Notifications
// to it fail with "suppressed" without a send.
type Suppression struct {
	Address
	// Reason is the error of the attempt that caused it.
	Reason string `json:"reason"`
	// ErrorCode is the provider's code for it ("5.1.1", "21610", "UNREGISTERED").
	ErrorCode string `json:"error_code,omitempty"`
	// NotificationID is the notification whose attempt caused it, empty if unknown.
	NotificationID string    `json:"notification_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

const suppressionColumns = `channel, address, reason, error_code, notification_id, created_at`

func scanSuppression(row pgx.CollectableRow) (Suppression, error) {
	var s Suppression
	var id pgtype.UUID
	err := row.Scan(&s.Channel, &s.Address.Address, &s.Reason, &s.ErrorCode, &id, &s.CreatedAt)
	if id.Valid {
		s.NotificationID = uuid.UUID(id.Bytes).String()
	}
	return s, err
}

// Suppressed returns the suppressions among addrs, keyed by address, in one query: the
// deliver functions ask once per claim batch.
func (s *Store) Suppressed(ctx context.Context, addrs []Address) (map[Address]Suppression, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	channels, addresses := make([]string, len(addrs)), make([]string, len(addrs))
	for i, a := range addrs {
		channels[i], addresses[i] = a.Channel, a.Address
	}
	rows, err := s.pool.Query(ctx, `
		select `+suppressionColumns+` from suppressions
		where (channel, address) in (select * from unnest($1::text[], $2::text[]))`, channels, addresses)
	if err != nil {
		return nil, fmt.Errorf("look up %d suppressions: %w", len(addrs), unavailable(err))
	}
	found, err := pgx.CollectRows(rows, scanSuppression)
	if err != nil {
		return nil, fmt.Errorf("look up %d suppressions: %w", len(addrs), unavailable(err))
	}
	out := make(map[Address]Suppression, len(found))
	for _, sup := range found {
		out[sup.Address] = sup
	}
	return out, nil
}

// Suppressions lists suppressions, newest first, at most limit: of one channel when channel
// is set, of one address when address is set too.
func (s *Store) Suppressions(ctx context.Context, channel, address string, limit int) ([]Suppression, error) {
	rows, err := s.pool.Query(ctx, `
		select `+suppressionColumns+` from suppressions
		where ($1 = '' or channel = $1) and ($2 = '' or address = $2)
		order by created_at desc, channel, address
		limit $3`, channel, address, limit)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, scanSuppression)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", unavailable(err))
	}
	return out, nil
}

// Suppress adds a suppression by hand; an address already suppressed keeps its first row.
func (s *Store) Suppress(ctx context.Context, sup Suppression) error {
	var id pgtype.UUID
	if sup.NotificationID != "" {
		uid, err := uuid.Parse(sup.NotificationID)
		if err != nil {
			return fmt.Errorf("suppress %s address: notification id: %w", sup.Channel, notification.ErrNotFound)
		}
		id = pgtype.UUID{Bytes: uid, Valid: true}
	}
	_, err := s.pool.Exec(ctx, `
		insert into suppressions (`+suppressionColumns+`) values ($1, $2, $3, $4, $5, $6)
		on conflict (channel, address) do nothing`,
		sup.Channel, sup.Address.Address, sup.Reason, sup.ErrorCode, id, s.now())
	if err != nil {
		return fmt.Errorf("suppress %s address: %w", sup.Channel, unavailable(err))
	}
	return nil
}

// Unsuppress removes the suppression of addr, so notifications to it are sent again. It
// returns notification.ErrSuppressionNotFound when there is none.
func (s *Store) Unsuppress(ctx context.Context, addr Address) error {
	tag, err := s.pool.Exec(ctx, `delete from suppressions where channel = $1 and address = $2`, addr.Channel, addr.Address)
	if err != nil {
		return fmt.Errorf("remove %s suppression: %w", addr.Channel, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("remove %s suppression: %w", addr.Channel, notification.ErrSuppressionNotFound)
	}
	return nil
}

// PutBack undoes the claim of a notification whose send did not happen (its provider
// accounts were all at their rate limit): it goes back to retrying, due at now+wait, with the
// attempt uncounted, and cron's release job queues it again. Like every transition it is one
// conditional UPDATE: it moves the notification only while it is still sending under the
// claim whose attempts count is attempt, and returns notification.ErrLeaseLost otherwise.
func (s *Store) PutBack(ctx context.Context, id string, attempt int, wait time.Duration) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("put back notification %s: %w", id, notification.ErrNotFound)
	}
	now := s.now()
	tag, err := s.pool.Exec(ctx, `
		update notifications
		set status = 'retrying', attempts = attempts - 1, next_attempt_at = $3, lease_until = null, updated_at = $4
		where id = $1 and status = (select 'sending') and attempts = $2`, uid, attempt, now.Add(wait), now)
	if err != nil {
		return fmt.Errorf("put back notification %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put back notification %s: %w", id, notification.ErrLeaseLost)
	}
	return nil
}
