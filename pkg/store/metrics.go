package store

import (
	"context"
	"fmt"
	"time"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// The statements the metrics function runs at every scrape. None of them reads the rows of
// notifications, however many there are: states and finish times are counted by the counters
// that migrations/002_notification_counts.sql maintains, and past-due work through the partial
// index of 001 that holds only scheduled and retrying rows, whose predicate the WHERE repeats.

// PastDueCap bounds how many past-due notifications CountPastDue counts. Each costs a read of
// its heap page (the partial index is on an expression, which PostgreSQL does not answer
// from the index alone), some 50 µs when the page is not cached; knowing that a thousand are
// late is enough to alert and to see the trend.
const PastDueCap = 1000

// StatusCounts returns how many notifications are in each state, every state included, read
// from the maintained counts in one snapshot.
func (s *Store) StatusCounts(ctx context.Context) (map[notification.Status]int64, error) {
	rows, err := s.pool.Query(ctx, `
		select status, sum(n)::bigint from (
			select status, count as n from notification_counts
			union all
			select status, delta from notification_count_changes
		) counted
		group by status`)
	if err != nil {
		return nil, fmt.Errorf("count notifications by status: %w", unavailable(err))
	}
	defer rows.Close()
	out := make(map[notification.Status]int64, len(notification.Statuses))
	for _, st := range notification.Statuses {
		out[st] = 0
	}
	for rows.Next() {
		var status notification.Status
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count notifications by status: %w", err)
		}
		out[status] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count notifications by status: %w", unavailable(err))
	}
	return out, nil
}

// CountPastDue counts the scheduled and retrying notifications that were due before before
// and are still waiting to be released to their streams, up to PastDueCap.
func (s *Store) CountPastDue(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `
		select count(*) from (
			select from notifications
			where status in ('scheduled', 'retrying') and coalesce(next_attempt_at, send_at) < $1
			limit $2
		) late`, before, PastDueCap).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count past-due notifications: %w", unavailable(err))
	}
	return n, nil
}

// FinishedSince returns, per channel and terminal state, how many notifications finished at or
// after the start of the minute that holds since: finish times are counted by the minute.
// Channels with no such notification are missing from the map.
func (s *Store) FinishedSince(ctx context.Context, since time.Time) (map[notification.Channel]map[notification.Status]int64, error) {
	rows, err := s.pool.Query(ctx, `
		select channel, status, sum(n)::bigint from (
			select channel, status, count as n from notification_counts
			where finished >= date_bin('1 minute', $1::timestamptz, timestamptz 'epoch')
			union all
			select channel, status, delta from notification_count_changes
			where finished >= date_bin('1 minute', $1::timestamptz, timestamptz 'epoch')
		) finished
		group by channel, status`, since)
	if err != nil {
		return nil, fmt.Errorf("count notifications finished since %s: %w", since.Format(time.RFC3339), unavailable(err))
	}
	defer rows.Close()
	out := map[notification.Channel]map[notification.Status]int64{}
	for rows.Next() {
		var channel notification.Channel
		var status notification.Status
		var n int64
		if err := rows.Scan(&channel, &status, &n); err != nil {
			return nil, fmt.Errorf("count notifications finished since %s: %w", since.Format(time.RFC3339), err)
		}
		if out[channel] == nil {
			out[channel] = map[notification.Status]int64{}
		}
		out[channel][status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count notifications finished since %s: %w", since.Format(time.RFC3339), unavailable(err))
	}
	return out, nil
}

// CountPendingChanges counts the changes to the maintained counts that RollUpCounts has not
// rolled up yet: every count read adds them up, so they must stay few.
func (s *Store) CountPendingChanges(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `select count(*) from notification_count_changes`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending notification count changes: %w", unavailable(err))
	}
	return n, nil
}

// RollUpCounts folds up to limit recorded changes into the maintained counts, and folds the counts of minutes before foldBefore into one count per state
// and channel, which FinishedSince no longer tells apart by minute; foldBefore must be older
// than any window FinishedSince is asked about. It returns how many changes it rolled up: fewer
// than limit means none are left.
//
// Counts read at any time are right whether or not a roll-up has run, since readers add the
// changes not rolled up yet; rolling up only keeps the changes few. Roll-ups may run at once
// (two metrics replicas): each change is deleted, and so counted, by exactly one of them.
func (s *Store) RollUpCounts(ctx context.Context, limit int, foldBefore time.Time) (int, error) {
	// Rows are locked in key order, so two roll-ups never wait on each other in a cycle.
	var rolled int
	err := s.pool.QueryRow(ctx, `
		with moved as (
			delete from notification_count_changes
			where ctid = any (array(select ctid from notification_count_changes limit $1))
			returning status, channel, finished, delta
		), folded as (
			select status, channel,
				case when finished < $2 then '-infinity'::timestamptz else finished end as finished,
				sum(delta) as delta, count(*) as changes
			from moved
			group by 1, 2, 3
		), counted as (
			insert into notification_counts as c (status, channel, finished, count)
			select status, channel, finished, delta from folded
			order by status, channel, finished
			on conflict (status, channel, finished) do update set count = c.count + excluded.count
		)
		select coalesce(sum(changes), 0)::int from folded`, limit, foldBefore).Scan(&rolled)
	if err != nil {
		return 0, fmt.Errorf("roll up notification counts: %w", unavailable(err))
	}
	_, err = s.pool.Exec(ctx, `
		with old as (
			delete from notification_counts
			where finished > '-infinity' and finished < $1
			returning status, channel, count
		)
		insert into notification_counts as c (status, channel, finished, count)
		select status, channel, '-infinity', sum(count) from old
		group by status, channel
		order by status, channel
		on conflict (status, channel, finished) do update set count = c.count + excluded.count`, foldBefore)
	if err != nil {
		return rolled, fmt.Errorf("fold notification counts before %s: %w", foldBefore.Format(time.RFC3339), unavailable(err))
	}
	return rolled, nil
}

// VacuumCounts vacuums the tables of the maintained counts, which every roll-up leaves dead
// rows in: until a vacuum, each count read steps over them, and autovacuum may wait a minute or
// more. It never truncates the tables, which would lock out, however briefly, the writers of
// notifications whose triggers append to them.
func (s *Store) VacuumCounts(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `vacuum (truncate false) notification_count_changes, notification_counts`); err != nil {
		return fmt.Errorf("vacuum notification counts: %w", unavailable(err))
	}
	return nil
}
