package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// The operator's list, replay and cancel. Every one walks the notifications newest first in
// (created_at, id) order from a cursor, through the indexes of migrations/003_list.sql, so a
// page costs the same on the first row and the ten millionth, and rows inserted while an
// operator pages (they are newer than any cursor) never make a page skip or repeat a row.

// ErrEnqueueLater means notifications were moved to queued but could not be added to their
// streams; the recover job adds them later.
var ErrEnqueueLater = errors.New("queued; the recover job will enqueue them")

// ErrBadCursor means a cursor was not one Pulse handed out.
var ErrBadCursor = errors.New("invalid cursor")

// Filter selects notifications. Zero fields select everything.
type Filter struct {
	// Statuses, when set, selects notifications in one of these states.
	Statuses []notification.Status
	// Channel, when set, selects notifications of this channel.
	Channel notification.Channel
	// Priority, when set, selects notifications of this priority.
	Priority notification.Priority
	// Source, when set, selects notifications whose CloudEvent source is exactly this.
	Source string
	// Since and Until, when set, select notifications created at or after Since and before
	// Until.
	Since, Until time.Time
	// Error, when set, selects notifications whose last error contains it, ignoring case.
	Error string
	// IDs, when set, selects these notifications only.
	IDs []string
	// Prefixes, when not nil, selects notifications whose source starts with one of these (a
	// token's source prefixes; "*" is any source). Nil means any source.
	Prefixes []string
}

// Cursor is a position in the newest-first order: the last row a page or batch went through.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// cursorVersion starts every encoded cursor, so that the format can change without an old
// cursor being misread.
const cursorVersion = "1"

// Encode returns c as an opaque string safe in a URL query.
func (c Cursor) Encode() string {
	raw := cursorVersion + "." + strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor reads a cursor Encode wrote, or returns an error wrapping ErrBadCursor.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("%w: unknown format", ErrBadCursor)
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: bad time", ErrBadCursor)
	}
	id, err := uuid.Parse(parts[2])
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: bad id", ErrBadCursor)
	}
	return Cursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: id.String()}, nil
}

// where builds the SQL condition that selects f's rows after the cursor (when not nil), in
// the given states (when set; they further restrict f.Statuses), with its arguments numbered
// from $1.
func (f Filter) where(after *Cursor, states []notification.Status) (string, []any, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	statuses := f.Statuses
	if len(states) > 0 {
		if len(statuses) == 0 {
			statuses = states
		} else {
			statuses = intersect(statuses, states)
			if len(statuses) == 0 {
				return "false", nil, nil
			}
		}
	}
	if len(statuses) == 1 {
		// Equality, not = any: only then does the planner walk (status, created_at, id) in order.
		conds = append(conds, "status = "+arg(string(statuses[0])))
	} else if len(statuses) > 1 {
		s := make([]string, len(statuses))
		for i, st := range statuses {
			s[i] = string(st)
		}
		conds = append(conds, "status = any("+arg(s)+"::text[])")
	}
	if f.Channel != "" {
		conds = append(conds, "channel = "+arg(string(f.Channel)))
	}
	if f.Priority != "" {
		conds = append(conds, "priority = "+arg(string(f.Priority)))
	}
	if f.Source != "" {
		conds = append(conds, "source = "+arg(f.Source))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "created_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "created_at < "+arg(f.Until))
	}
	if f.Error != "" {
		// last_error <> '' is the predicate of the partial trigram index.
		conds = append(conds, "last_error <> '' and last_error ilike "+arg("%"+likeEscape(f.Error)+"%"))
	}
	if f.IDs != nil {
		ids := make([]uuid.UUID, 0, len(f.IDs))
		for _, id := range f.IDs {
			uid, err := uuid.Parse(id)
			if err != nil {
				return "", nil, fmt.Errorf("%w: id %q is not a notification id", notification.ErrNotFound, id)
			}
			ids = append(ids, uid)
		}
		conds = append(conds, "id = any("+arg(ids)+"::uuid[])")
	}
	if f.Prefixes != nil {
		var patterns []string
		anySource := false
		for _, p := range f.Prefixes {
			if p == "*" {
				anySource = true
				break
			}
			patterns = append(patterns, likeEscape(p)+"%")
		}
		if !anySource {
			conds = append(conds, "source like any("+arg(patterns)+"::text[])")
		}
	}
	if after != nil {
		uid, err := uuid.Parse(after.ID)
		if err != nil {
			return "", nil, fmt.Errorf("%w: bad id", ErrBadCursor)
		}
		conds = append(conds, "(created_at, id) < ("+arg(after.CreatedAt)+"::timestamptz, "+arg(uid)+"::uuid)")
	}
	if len(conds) == 0 {
		return "true", args, nil
	}
	return strings.Join(conds, " and "), args, nil
}

func intersect(a, b []notification.Status) []notification.Status {
	var out []notification.Status
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// likeEscape escapes s for use inside a LIKE pattern with the default escape character.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// listColumns are columns with the bodies left out: a list never shows them.
const listColumns = `id, source, event_id, channel, priority, status, recipient, subject, '' as body, '' as html,
	null::jsonb as data, metadata, attempts, max_attempts, send_at, expires_at, next_attempt_at, last_error,
	provider_message_id, created_at, queued_at, sending_at, delivered_at, failed_at, cancelled_at, expired_at,
	updated_at`

// listSQL is List's statement: up to limit rows f selects after the cursor, newest first.
func listSQL(f Filter, after *Cursor, limit int) (string, []any, error) {
	where, args, err := f.where(after, nil)
	if err != nil {
		return "", nil, err
	}
	args = append(args, limit)
	return `select ` + listColumns + ` from notifications where ` + where + `
		order by created_at desc, id desc limit $` + strconv.Itoa(len(args)), args, nil
}

// List returns up to limit notifications f selects, newest first, after the cursor (nil: from
// the newest), and the cursor of the next page, nil when this page is the last.
func (s *Store) List(ctx context.Context, f Filter, after *Cursor, limit int) ([]notification.Notification, *Cursor, error) {
	query, args, err := listSQL(f, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list notifications: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (notification.Notification, error) {
		return scanNotification(row)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list notifications: %w", unavailable(err))
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// latestFailures selects what LatestFailures reads: a single state, so the planner walks
// notifications_status_created_idx backwards and stops after limit rows.
var latestFailures = Filter{Statuses: []notification.Status{notification.Failed}}

// LatestFailures returns up to limit failed notifications, the most recently requested first,
// without their bodies. It reads an index, whatever the table holds (TestListFiltersUseIndexes).
func (s *Store) LatestFailures(ctx context.Context, limit int) ([]notification.Notification, error) {
	out, _, err := s.List(ctx, latestFailures, nil, limit)
	return out, err
}

// Count counts the notifications f selects that are in one of states (all states when none).
func (s *Store) Count(ctx context.Context, f Filter, states []notification.Status) (int64, error) {
	where, args, err := f.where(nil, states)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, `select count(*) from notifications where `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count notifications: %w", unavailable(err))
	}
	return n, nil
}

// The states an operator's replay and cancel move notifications out of.
var (
	// Replayable are the states a replay moves back to queued.
	Replayable = []notification.Status{notification.Failed, notification.Expired}
	// Cancellable are the states a cancel moves to cancelled.
	Cancellable = []notification.Status{notification.Scheduled, notification.Queued, notification.Retrying}
)

// Outcomes of the attempt-history rows an operator's replay or cancel adds.
const (
	OutcomeReplayed  = "replayed"
	OutcomeCancelled = "cancelled"
)

// Moved is what one batch of a replay or cancel did.
type Moved struct {
	// Notifications are the rows the batch moved.
	Notifications []Due
	// Next is where the next batch starts; nil when the batch was the last.
	Next *Cursor
}

// Replay moves up to limit notifications f selects that are failed or expired, newer than the
// cursor (nil: from the newest), back to queued with fresh attempts: attempts starts again
// from zero against the same max_attempts, and an expired notification's expires_at is
// cleared (the operator asked for it to be sent). Each gets an attempt-history row with
// outcome "replayed" whose error is note (who asked, and why).
//
// It is one transaction: it locks the rows with FOR UPDATE SKIP LOCKED, moves them with an
// UPDATE that names the states they may leave, commits, and then calls enqueue with them, like
// the release job: a deliver function that reads an entry finds its row queued (an entry added
// before the commit could be read while the row still looked failed, and dropped). When
// enqueue fails the rows stay queued and Replay returns them with an error wrapping
// ErrEnqueueLater: the recover job adds them to their streams after
// PULSE_RECOVER_QUEUED_AFTER. A notification a concurrent replay holds is skipped (that replay
// moves it), and one that already moved is no longer failed or expired, so two replays of the
// same set move each row once.
func (s *Store) Replay(ctx context.Context, f Filter, after *Cursor, limit int, note string, enqueue func(context.Context, []Due) error) (Moved, error) {
	return s.moveBatch(ctx, f, after, limit, Replayable, `
		status = 'queued', attempts = 0, queued_at = $now, next_attempt_at = null, lease_until = null,
		failed_at = null, expired_at = null, finished_at = null, expires_at = null, updated_at = $now`,
		OutcomeReplayed, note, enqueue)
}

// CancelMatching moves up to limit notifications f selects that are scheduled, queued or
// retrying, newer than the cursor, to cancelled, each with an attempt-history row with outcome
// "cancelled" whose error is note. Like Replay, it is one transaction with FOR UPDATE SKIP
// LOCKED and a conditional UPDATE. A stream entry left behind is harmless: deliver claims only
// queued rows.
func (s *Store) CancelMatching(ctx context.Context, f Filter, after *Cursor, limit int, note string) (Moved, error) {
	return s.moveBatch(ctx, f, after, limit, Cancellable, `
		status = 'cancelled', cancelled_at = $now, finished_at = $now, next_attempt_at = null, updated_at = $now`,
		OutcomeCancelled, note, nil)
}

func (s *Store) moveBatch(ctx context.Context, f Filter, after *Cursor, limit int, from []notification.Status, set, outcome, note string, enqueue func(context.Context, []Due) error) (Moved, error) {
	op := outcome
	where, args, err := f.where(after, from)
	if err != nil {
		return Moved{}, err
	}
	states := make([]string, len(from))
	for i, st := range from {
		states[i] = string(st)
	}
	now := s.now()
	args = append(args, now, limit, note, states)
	n := len(args)
	nowArg, limitArg, noteArg, statesArg := "$"+strconv.Itoa(n-3), "$"+strconv.Itoa(n-2), "$"+strconv.Itoa(n-1), "$"+strconv.Itoa(n)
	set = strings.ReplaceAll(set, "$now", nowArg+"::timestamptz")
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Moved{}, fmt.Errorf("%s notifications: %w", op, unavailable(err))
	}
	defer tx.Rollback(context.Background())
	rows, err := tx.Query(ctx, `
		with picked as (
			select id, attempts from notifications
			where `+where+`
			order by created_at desc, id desc
			limit `+limitArg+`
			for update skip locked
		), moved as (
			update notifications n
			set `+set+`
			from picked
			where n.id = picked.id and n.status = any(`+statesArg+`::text[])
			returning n.id, n.channel, n.priority, n.created_at, picked.attempts
		), noted as (
			insert into delivery_attempts (notification_id, attempt, outcome, error, started_at, duration_ms)
			select id, attempts, '`+outcome+`', `+noteArg+`, `+nowArg+`, 0 from moved
		)
		select id, channel, priority, created_at from moved
		order by created_at desc, id desc`, args...)
	if err != nil {
		return Moved{}, fmt.Errorf("%s notifications: %w", op, unavailable(err))
	}
	var moved Moved
	var last Cursor
	for rows.Next() {
		var d Due
		var id uuid.UUID
		if err := rows.Scan(&id, &d.Channel, &d.Priority, &last.CreatedAt); err != nil {
			rows.Close()
			return Moved{}, fmt.Errorf("%s notifications: %w", op, err)
		}
		d.ID = id.String()
		last.ID = d.ID
		moved.Notifications = append(moved.Notifications, d)
	}
	if err := rows.Err(); err != nil {
		return Moved{}, fmt.Errorf("%s notifications: %w", op, unavailable(err))
	}
	if len(moved.Notifications) == 0 {
		return moved, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return Moved{}, fmt.Errorf("commit %s notifications: %w", op, unavailable(err))
	}
	if len(moved.Notifications) == limit {
		moved.Next = &last
	}
	if enqueue != nil {
		if err := enqueue(ctx, moved.Notifications); err != nil {
			return moved, fmt.Errorf("%w: %d notifications %s but not added to their streams: %w",
				ErrEnqueueLater, len(moved.Notifications), op, err)
		}
	}
	return moved, nil
}
