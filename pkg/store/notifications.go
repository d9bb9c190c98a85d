package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// NewNotification is a validated request to store.
type NewNotification struct {
	Source      string
	EventID     string
	Request     notification.Request
	MaxAttempts int
}

// Accepted is what storing one request came to.
type Accepted struct {
	ID        string
	Source    string
	EventID   string
	Channel   notification.Channel
	Priority  notification.Priority
	Status    notification.Status
	CreatedAt time.Time
	// Duplicate is true when the source and event id had been stored before; the other fields
	// then describe the first notification: its id and created_at as first answered, and its
	// status now.
	Duplicate bool
}

// Insert stores items in one statement and reports, in the same order, the notification each
// became. A (source, event id) pair stored before, or repeated within items, is not stored
// again: its answer describes the first notification, with Duplicate set.
//
// A request whose send_at is in the future is stored as scheduled, any other as queued. A value
// PostgreSQL refuses fails the statement with an *InputError (ErrInvalidInput).
func (s *Store) Insert(ctx context.Context, items []NewNotification) ([]Accepted, error) {
	// At the precision PostgreSQL stores and in UTC, so that the answer to a request and the
	// answers to its repeats, read back from the row, carry the same created_at.
	now := s.now().UTC().Truncate(time.Microsecond)
	n := len(items)
	var (
		ids                                               = make([][16]byte, 0, n)
		sources, eventIDs, channels, priorities, statuses = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		recipients, subjects, bodies, htmls               = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		datas, metadatas                                  = make([]pgtype.Text, 0, n), make([]pgtype.Text, 0, n)
		maxAttempts                                       = make([]int32, 0, n)
		sendAts, expiresAts, queuedAts                    = make([]pgtype.Timestamptz, 0, n), make([]pgtype.Timestamptz, 0, n), make([]pgtype.Timestamptz, 0, n)
		out                                               = make([]Accepted, n)
		rowOf                                             = make([]int, 0, n) // the item of each row
		firstOf                                           = make(map[[2]string]int, n)
		repeats                                           []int
	)
	for i, it := range items {
		key := [2]string{it.Source, it.EventID}
		if _, seen := firstOf[key]; seen {
			repeats = append(repeats, i)
			continue
		}
		firstOf[key] = i
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("insert notifications: new id: %w", err)
		}
		r := it.Request
		status, queuedAt := notification.Queued, pgtype.Timestamptz{Time: now, Valid: true}
		if r.SendAt != nil && r.SendAt.After(now) {
			status, queuedAt = notification.Scheduled, pgtype.Timestamptz{}
		}
		out[i] = Accepted{ID: id.String(), Source: it.Source, EventID: it.EventID, Channel: r.Channel,
			Priority: r.Priority, Status: status, CreatedAt: now}
		ids, rowOf = append(ids, id), append(rowOf, i)
		sources, eventIDs = append(sources, it.Source), append(eventIDs, it.EventID)
		channels, priorities, statuses = append(channels, string(r.Channel)), append(priorities, string(r.Priority)), append(statuses, string(status))
		recipients, subjects, bodies, htmls = append(recipients, r.To), append(subjects, r.Subject), append(bodies, r.Body), append(htmls, r.HTML)
		datas, metadatas = append(datas, jsonText(r.Data)), append(metadatas, metadataText(r.Metadata))
		maxAttempts = append(maxAttempts, int32(it.MaxAttempts))
		sendAts, expiresAts, queuedAts = append(sendAts, timestamptz(r.SendAt)), append(expiresAts, timestamptz(r.ExpiresAt)), append(queuedAts, queuedAt)
	}

	// One statement, committed on its own: a batch costs PostgreSQL one round trip and one WAL
	// flush, with no BEGIN and COMMIT around it. The arrays are of types pgx encodes without
	// reflection: a []uuid.UUID goes through its driver.Valuer, as text that fails to encode
	// and is parsed back, which cost more than the rest of the statement's encoding.
	rows, err := s.pool.Query(ctx, `
		insert into notifications (id, source, event_id, channel, priority, status, recipient, subject, body, html,
			data, metadata, max_attempts, send_at, expires_at, queued_at, created_at, updated_at)
		select id, source, event_id, channel, priority, status, recipient, subject, body, html,
			data::jsonb, metadata::jsonb, max_attempts, send_at, expires_at, queued_at, $17, $17
		from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::timestamptz[], $15::timestamptz[],
			$16::timestamptz[])
			as t(id, source, event_id, channel, priority, status, recipient, subject, body, html, data, metadata,
			     max_attempts, send_at, expires_at, queued_at)
		on conflict (source, event_id) do nothing
		returning id`,
		ids, sources, eventIDs, channels, priorities, statuses, recipients, subjects, bodies, htmls,
		pgtype.FlatArray[pgtype.Text](datas), pgtype.FlatArray[pgtype.Text](metadatas), maxAttempts,
		pgtype.FlatArray[pgtype.Timestamptz](sendAts), pgtype.FlatArray[pgtype.Timestamptz](expiresAts),
		pgtype.FlatArray[pgtype.Timestamptz](queuedAts), now)
	if err != nil {
		return nil, fmt.Errorf("insert notifications: %w", inputError(unavailable(err), insertParams, "data.data"))
	}
	inserted := make(map[[16]byte]bool, len(ids))
	for rows.Next() {
		var id [16]byte
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("insert notifications: %w", err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert notifications: %w", inputError(unavailable(err), insertParams, "data.data"))
	}

	// Rows that conflicted were stored by an earlier request (or by one that committed while
	// this statement waited): a new statement sees them.
	var dupSources, dupEventIDs []string
	var conflicted []int // items whose row conflicted
	for r, id := range ids {
		if !inserted[id] {
			i := rowOf[r]
			conflicted = append(conflicted, i)
			dupSources, dupEventIDs = append(dupSources, items[i].Source), append(dupEventIDs, items[i].EventID)
		}
	}
	if len(conflicted) > 0 {
		existing, err := acceptedByEvent(ctx, s.pool, dupSources, dupEventIDs)
		if err != nil {
			return nil, err
		}
		for _, i := range conflicted {
			e, ok := existing[[2]string{items[i].Source, items[i].EventID}]
			if !ok {
				return nil, fmt.Errorf("insert notifications: conflicting row for event %q vanished", items[i].EventID)
			}
			out[i] = e
		}
	}
	for _, i := range repeats {
		first := out[firstOf[[2]string{items[i].Source, items[i].EventID}]]
		first.Duplicate = true
		out[i] = first
	}
	return out, nil
}

func acceptedByEvent(ctx context.Context, db *pgxpool.Pool, sources, eventIDs []string) (map[[2]string]Accepted, error) {
	rows, err := db.Query(ctx, `
		select n.id, n.source, n.event_id, n.channel, n.priority, n.status, n.created_at
		from notifications n
		join unnest($1::text[], $2::text[]) as k(source, event_id) using (source, event_id)`, sources, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("look up duplicate notifications: %w", unavailable(err))
	}
	out := make(map[[2]string]Accepted, len(sources))
	for rows.Next() {
		var a Accepted
		var id uuid.UUID
		if err := rows.Scan(&id, &a.Source, &a.EventID, &a.Channel, &a.Priority, &a.Status, &a.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("look up duplicate notifications: %w", err)
		}
		a.ID, a.Duplicate, a.CreatedAt = id.String(), true, a.CreatedAt.UTC()
		out[[2]string{a.Source, a.EventID}] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up duplicate notifications: %w", unavailable(err))
	}
	return out, nil
}

func timestamptz(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

func jsonText(raw json.RawMessage) pgtype.Text {
	if raw == nil {
		return pgtype.Text{}
	}
	return pgtype.Text{String: string(raw), Valid: true}
}

func metadataText(m map[string]string) pgtype.Text {
	if len(m) == 0 {
		return pgtype.Text{}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return pgtype.Text{String: string(b), Valid: true}
}

// columns lists the notifications columns scanNotification reads, in order.
const columns = `id, source, event_id, channel, priority, status, recipient, subject, body, html, data, metadata,
	attempts, max_attempts, send_at, expires_at, next_attempt_at, last_error, provider_message_id,
	created_at, queued_at, sending_at, delivered_at, failed_at, cancelled_at, expired_at, updated_at`

func scanNotification(row pgx.Row) (notification.Notification, error) {
	n, _, err := scanNotificationID(row)
	return n, err
}

// scanNotificationID scans a row of columns and returns its id as bytes too. The id is scanned
// into a [16]byte, which pgx fills as is, not a uuid.UUID, which it fills through its
// sql.Scanner from text.
func scanNotificationID(row pgx.Row) (notification.Notification, [16]byte, error) {
	var n notification.Notification
	var id [16]byte
	var data, metadata []byte
	err := row.Scan(&id, &n.Source, &n.EventID, &n.Channel, &n.Priority, &n.Status, &n.To, &n.Subject, &n.Body,
		&n.HTML, &data, &metadata, &n.Attempts, &n.MaxAttempts, &n.SendAt, &n.ExpiresAt, &n.NextAttemptAt,
		&n.LastError, &n.ProviderMessageID, &n.CreatedAt, &n.QueuedAt, &n.SendingAt, &n.DeliveredAt,
		&n.FailedAt, &n.CancelledAt, &n.ExpiredAt, &n.UpdatedAt)
	if err != nil {
		return n, id, err
	}
	n.ID = uuid.UUID(id).String()
	if data != nil {
		n.Data = json.RawMessage(data)
	}
	if metadata != nil {
		if err := json.Unmarshal(metadata, &n.Metadata); err != nil {
			return n, id, fmt.Errorf("decode metadata: %w", err)
		}
	}
	return n, id, nil
}

// Get returns the notification with id, or notification.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (notification.Notification, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return notification.Notification{}, notification.ErrNotFound
	}
	n, err := scanNotification(s.pool.QueryRow(ctx, `select `+columns+` from notifications where id = $1`, uid))
	return n, lookupError("get notification "+id, err)
}

// GetByEvent returns the notification the CloudEvent (source, id) asked for, or
// notification.ErrNotFound.
func (s *Store) GetByEvent(ctx context.Context, source, eventID string) (notification.Notification, error) {
	n, err := scanNotification(s.pool.QueryRow(ctx,
		`select `+columns+` from notifications where source = $1 and event_id = $2`, source, eventID))
	return n, lookupError("get notification by event", err)
}

func lookupError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return notification.ErrNotFound
	default:
		return fmt.Errorf("%s: %w", op, unavailable(err))
	}
}

// CountActive counts the notifications in each unfinished state. It reads only the partial
// indexes of those states, so it stays cheap however many finished rows the table holds.
func (s *Store) CountActive(ctx context.Context) (map[notification.Status]int64, error) {
	out := map[notification.Status]int64{}
	var scheduled, queued, sending, retrying int64
	err := s.pool.QueryRow(ctx, `
		select
			(select count(*) from notifications where status = 'scheduled'),
			(select count(*) from notifications where status = 'queued'),
			(select count(*) from notifications where status = 'sending'),
			(select count(*) from notifications where status = 'retrying')`).Scan(&scheduled, &queued, &sending, &retrying)
	if err != nil {
		return nil, fmt.Errorf("count active notifications: %w", unavailable(err))
	}
	out[notification.Scheduled], out[notification.Queued], out[notification.Sending], out[notification.Retrying] = scheduled, queued, sending, retrying
	return out, nil
}

// Statuses returns the status of each notification of ids that exists, by id; ids that are not
// UUIDs or name no notification are left out. One primary-key lookup per id.
func (s *Store) Statuses(ctx context.Context, ids []string) (map[string]notification.Status, error) {
	uids := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if uid, err := uuid.Parse(id); err == nil {
			uids = append(uids, uid)
		}
	}
	out := make(map[string]notification.Status, len(uids))
	if len(uids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `select id, status from notifications where id = any($1)`, uids)
	if err != nil {
		return nil, fmt.Errorf("read status of %d notifications: %w", len(uids), unavailable(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var st notification.Status
		if err := rows.Scan(&id, &st); err != nil {
			return nil, fmt.Errorf("read status of %d notifications: %w", len(uids), unavailable(err))
		}
		out[id.String()] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read status of %d notifications: %w", len(uids), unavailable(err))
	}
	return out, nil
}
