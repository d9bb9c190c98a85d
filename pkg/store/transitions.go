package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// byKeyOnly: statements that move rows named by id compare their state with a sub-select,
// such as status = (select 'queued'), rather than a literal. A literal lets the planner prove
// that the partial index of that state (notifications_queued_idx, notifications_lease_idx)
// covers the rows, and with statistics taken while the state held few rows it scans that
// index and filters by id: one claim then reads the whole backlog, just when the backlog is
// large. The sub-select's value is unknown when planning, so the rows are found by primary
// key whatever the statistics say. TestClaimFindsRowsByPrimaryKey checks the plan.

// claimSQL moves the queued notifications among the ids $1 to sending at $2, leased until
// $3. The rows are found by primary key (see byKeyOnly) and locked in id order, so that two
// batches claiming some of the same ids at once (duplicate dispatches) never deadlock: an
// UPDATE alone locks in the order its plan visits rows, which for a bitmap scan is the heap's.
const claimSQL = `
	update notifications
	set status = 'sending', attempts = attempts + 1, sending_at = $2, lease_until = $3,
		next_attempt_at = null, updated_at = $2
	where id in (
		select id from notifications
		where id = any($1) and status = (select 'queued') and (expires_at is null or expires_at > $2)
		order by id
		for update
	)
	returning ` + columns

// Claim moves a queued notification to sending, counts the attempt and leases it until
// now+lease. It returns notification.ErrNotClaimable when the notification is not queued, and
// notification.ErrNotFound when there is none; a queued notification whose expires_at has
// passed is moved to expired and reported as not claimable.
func (s *Store) Claim(ctx context.Context, id string, lease time.Duration) (notification.Notification, error) {
	claimed, err := s.ClaimMany(ctx, []string{id}, lease)
	if err != nil {
		return notification.Notification{}, err
	}
	return claimed[0].Notification, claimed[0].Err
}

// Claimed is what claiming one notification came to.
type Claimed struct {
	Notification notification.Notification
	// Err is nil when the claim succeeded, else notification.ErrNotClaimable or notification.ErrNotFound.
	Err error
}

// ClaimMany claims several notifications in one transaction, as Claim does one, and returns a
// result per id, in order. An id named twice is claimed at most once.
func (s *Store) ClaimMany(ctx context.Context, ids []string, lease time.Duration) ([]Claimed, error) {
	out := make([]Claimed, len(ids))
	// [16]byte, not uuid.UUID: pgx encodes a [][16]byte as is, a []uuid.UUID by reflection
	// through each element's driver.Valuer.
	keys := make([][16]byte, len(ids))
	uids := make([][16]byte, 0, len(ids))
	for i, id := range ids {
		uid, err := uuid.Parse(id)
		if err != nil {
			out[i].Err = notification.ErrNotFound
			continue
		}
		keys[i] = uid
		uids = append(uids, uid)
	}
	now := s.now()
	claimed, err := s.claim(ctx, uids, now, lease)
	if err != nil {
		return nil, fmt.Errorf("claim %d notifications: %w", len(uids), unavailable(err))
	}
	byID := make(map[[16]byte]notification.Notification, len(claimed))
	for _, c := range claimed {
		byID[c.id] = c.Notification
	}
	var missed [][16]byte
	for i := range ids {
		if out[i].Err != nil {
			continue
		}
		n, ok := byID[keys[i]]
		switch {
		case ok:
			out[i].Notification = n
			delete(byID, keys[i]) // a second request for the same id gets no claim
		default:
			out[i].Err = notification.ErrNotClaimable
			missed = append(missed, keys[i])
		}
	}
	if len(missed) == 0 {
		return out, nil
	}
	// Not claimable: expire those whose time has passed, and tell missing rows from handled
	// ones.
	rows, err := s.pool.Query(ctx, `
		with expired as (
			update notifications
			set status = 'expired', expired_at = $2, finished_at = $2, updated_at = $2
			where id = any($1) and status = (select 'queued') and expires_at <= $2
		)
		select id from notifications where id = any($1)`, missed, now)
	if err != nil {
		return nil, fmt.Errorf("claim %d notifications: %w", len(uids), unavailable(err))
	}
	exists, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil {
		return nil, fmt.Errorf("claim %d notifications: %w", len(uids), unavailable(err))
	}
	found := make(map[[16]byte]bool, len(exists))
	for _, id := range exists {
		found[id] = true
	}
	for i := range ids {
		if errors.Is(out[i].Err, notification.ErrNotClaimable) && !found[keys[i]] {
			out[i].Err = notification.ErrNotFound
		}
	}
	return out, nil
}

// claim runs claimSQL with an asynchronous commit: it does not wait for the claim's WAL to
// reach the disk, which halves the flushes a delivery waits for. The claim is visible to every
// other session as soon as it commits, so two claims of one row still exclude each other; only
// a crash of the PostgreSQL server itself can lose it, and the next commit that waits (the
// record of any outcome, which always does) flushes it with its own WAL. A claim lost that
// way leaves the notification queued, without the attempt counted, and the requeue job hands
// it out again: the same resend a lease that ran out gives when the server crashes after the
// claim reached the disk. The setting is local to the claim's transaction (set_config's
// is_local), which the pipeline's single sync ends, so the connection's later statements
// commit as configured.
func (s *Store) claim(ctx context.Context, ids [][16]byte, now time.Time, lease time.Duration) ([]claimedRow, error) {
	b := &pgx.Batch{}
	b.Queue(`select set_config('synchronous_commit', 'off', true)`)
	b.Queue(claimSQL, ids, now, now.Add(lease))
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimedRow, error) {
		n, id, err := scanNotificationID(row)
		return claimedRow{Notification: n, id: id}, err
	})
	if err != nil {
		return nil, err
	}
	return claimed, br.Close()
}

// claimedRow is a claimed notification with its id as bytes.
type claimedRow struct {
	notification.Notification
	id [16]byte
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
	// Account names the provider account that handled the attempt; ErrorCode is the
	// provider's own code for a failure.
	Account, ErrorCode string
	// Suppress records the notification's (channel, recipient) in the suppression table with
	// Error as the reason: the provider said the recipient does not exist or opted out.
	Suppress bool
}

// Record stores an attempt's row and moves the notification to the attempt's state, in one
// statement. It returns notification.ErrLeaseLost when the notification is no longer sending
// under this attempt's claim; the attempt row is stored all the same, since the send happened.
func (s *Store) Record(ctx context.Context, a Attempt) error {
	errs, err := s.RecordMany(ctx, []Attempt{a})
	if err != nil {
		return err
	}
	return errs[0]
}

// RecordMany records several attempts in one statement, as Record does one, and returns an
// error per attempt (nil or notification.ErrLeaseLost), in order.
func (s *Store) RecordMany(ctx context.Context, attempts []Attempt) ([]error, error) {
	n := len(attempts)
	var (
		ids                                   = make([][16]byte, n) // see ClaimMany
		attemptNos, codes                     = make([]int32, n), make([]int32, n)
		statuses, errs, providerIDs, outcomes = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		nextAt                                = make([]pgtype.Timestamptz, n)
		startedAt                             = make([]time.Time, n)
		durations                             = make([]float64, n)
		accounts, errorCodes                  = make([]string, n), make([]string, n)
		suppress                              = make([]bool, n)
	)
	for i, a := range attempts {
		uid, err := uuid.Parse(a.NotificationID)
		if err != nil {
			return nil, fmt.Errorf("record attempts: notification id %q: %w", a.NotificationID, notification.ErrNotFound)
		}
		ids[i], attemptNos[i], codes[i] = uid, int32(a.Attempt), int32(a.StatusCode)
		statuses[i], errs[i], providerIDs[i], outcomes[i] = string(a.Status), a.Error, a.ProviderMessageID, a.Outcome
		nextAt[i], startedAt[i] = timestamptz(a.NextAttemptAt), a.StartedAt
		durations[i] = float64(a.Duration) / float64(time.Millisecond)
		accounts[i], errorCodes[i], suppress[i] = a.Account, a.ErrorCode, a.Suppress
	}
	rows, err := s.pool.Query(ctx, recordSQL,
		ids, attemptNos, statuses, pgtype.FlatArray[pgtype.Timestamptz](nextAt), errs, providerIDs, outcomes, codes,
		startedAt, durations, s.now(), accounts, errorCodes, suppress)
	if err != nil {
		return nil, fmt.Errorf("record %d attempts: %w", n, unavailable(err))
	}
	moved, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil {
		return nil, fmt.Errorf("record %d attempts: %w", n, unavailable(err))
	}
	ok := make(map[[16]byte]bool, len(moved))
	for _, id := range moved {
		ok[id] = true
	}
	out := make([]error, n)
	for i, id := range ids {
		if !ok[id] {
			out[i] = notification.ErrLeaseLost
		}
	}
	return out, nil
}

// recordSQL stores the attempts given as arrays ($1 to $10 and $12 to $14, one element per
// attempt) and moves each notification still sending under its attempt to the attempt's
// state, at $11; attempts marked suppress add their recipient to the suppressions (a
// recipient already there keeps its first row). It returns the ids moved. The rows are found
// by primary key (see byKeyOnly).
const recordSQL = `
	with input as (
		select * from unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
			$7::text[], $8::int[], $9::timestamptz[], $10::float8[], $12::text[], $13::text[], $14::bool[])
			as t(id, attempt, status, next_attempt_at, error, provider_message_id, outcome, status_code,
			     started_at, duration_ms, account, error_code, suppress)
	), suppressed as (
		insert into suppressions (channel, address, reason, error_code, notification_id, created_at)
		select distinct on (n.channel, n.recipient) n.channel, n.recipient, i.error, i.error_code, i.id, $11
		from input i join notifications n on n.id = i.id
		where i.suppress
		order by n.channel, n.recipient
		on conflict (channel, address) do nothing
	), moved as (
		update notifications n
		set status = i.status, next_attempt_at = i.next_attempt_at, lease_until = null, last_error = i.error,
			provider_message_id = case when i.provider_message_id = '' then n.provider_message_id else i.provider_message_id end,
			delivered_at = case when i.status = 'delivered' then $11 else n.delivered_at end,
			failed_at = case when i.status = 'failed' then $11 else n.failed_at end,
			expired_at = case when i.status = 'expired' then $11 else n.expired_at end,
			finished_at = case when i.status in ('delivered', 'failed', 'expired') then $11::timestamptz end,
			updated_at = $11
		from input i
		where n.id = i.id and n.status = (select 'sending') and n.attempts = i.attempt
		returning n.id
	), attempt as (
		insert into delivery_attempts (notification_id, attempt, outcome, status_code, error,
			provider_message_id, started_at, duration_ms, account, error_code)
		select id, attempt, outcome, status_code, error, provider_message_id, started_at, duration_ms, account,
			error_code from input
	)
	select id from moved`

// AttemptRow is one stored delivery attempt.
type AttemptRow struct {
	Attempt           int           `json:"attempt"`
	Outcome           string        `json:"outcome"`
	StatusCode        int           `json:"status_code,omitempty"`
	Error             string        `json:"error,omitempty"`
	ProviderMessageID string        `json:"provider_message_id,omitempty"`
	StartedAt         time.Time     `json:"started_at"`
	Duration          time.Duration `json:"duration_ns"`
	Account           string        `json:"account,omitempty"`
	ErrorCode         string        `json:"error_code,omitempty"`
}

// Attempts returns the delivery attempts of a notification, oldest first.
func (s *Store) Attempts(ctx context.Context, id string) ([]AttemptRow, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, notification.ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `
		select attempt, outcome, status_code, error, provider_message_id, started_at, duration_ms, account, error_code
		from delivery_attempts where notification_id = $1 order by id`, uid)
	if err != nil {
		return nil, fmt.Errorf("list attempts of notification %s: %w", id, unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AttemptRow, error) {
		var a AttemptRow
		var ms float64
		err := row.Scan(&a.Attempt, &a.Outcome, &a.StatusCode, &a.Error, &a.ProviderMessageID, &a.StartedAt, &ms, &a.Account, &a.ErrorCode)
		a.Duration = time.Duration(ms * float64(time.Millisecond))
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of notification %s: %w", id, unavailable(err))
	}
	return out, nil
}
