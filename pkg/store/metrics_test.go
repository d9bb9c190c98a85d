package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// insertRows inserts n notifications of one channel and status, finished at finished when it
// is not zero, straight with SQL, as an import or a test fixture would, and returns their ids.
func insertRows(t *testing.T, pool *pgxpool.Pool, n int, channel notification.Channel, status notification.Status, finished time.Time) []string {
	t.Helper()
	var fin *time.Time
	if !finished.IsZero() {
		fin = &finished
	}
	rows, err := pool.Query(context.Background(), `
		insert into notifications (id, source, event_id, channel, priority, status, recipient, max_attempts,
			created_at, updated_at, finished_at)
		select gen_random_uuid(), 'fixture', gen_random_uuid()::text, $2, 'high', $3, 'to', 3, now(), now(), $4
		from generate_series(1, $1)
		returning id::text`, n, string(channel), string(status), fin)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

// countedByTable counts the notifications of each state the slow way.
func countedByTable(t *testing.T, pool *pgxpool.Pool) map[notification.Status]int64 {
	t.Helper()
	out := map[notification.Status]int64{}
	for _, s := range notification.Statuses {
		out[s] = 0
	}
	rows, err := pool.Query(context.Background(), `select status, count(*) from notifications group by status`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var s notification.Status
		var n int64
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// finishedByTable counts, per channel and terminal state, the notifications that finished at
// or after since, the slow way.
func finishedByTable(t *testing.T, pool *pgxpool.Pool, since time.Time) map[notification.Channel]map[notification.Status]int64 {
	t.Helper()
	out := map[notification.Channel]map[notification.Status]int64{}
	rows, err := pool.Query(context.Background(), `
		select channel, status, count(*) from notifications
		where status in ('delivered', 'failed', 'cancelled', 'expired') and finished_at >= $1
		group by channel, status`, since)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var c notification.Channel
		var s notification.Status
		var n int64
		require.NoError(t, rows.Scan(&c, &s, &n))
		if out[c] == nil {
			out[c] = map[notification.Status]int64{}
		}
		out[c][s] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// withoutZeros drops the zero counts FinishedSince may keep for minutes whose changes cancel
// out.
func withoutZeros(m map[notification.Channel]map[notification.Status]int64) map[notification.Channel]map[notification.Status]int64 {
	out := map[notification.Channel]map[notification.Status]int64{}
	for c, byStatus := range m {
		for s, n := range byStatus {
			if n == 0 {
				continue
			}
			if out[c] == nil {
				out[c] = map[notification.Status]int64{}
			}
			out[c][s] = n
		}
	}
	return out
}

func TestStatusCountsFollowEveryKindOfChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pool := b.store.Pool()
	check := func(step string) {
		t.Helper()
		got, err := b.store.StatusCounts(ctx)
		require.NoError(t, err, step)
		if diff := cmp.Diff(countedByTable(t, pool), got); diff != "" {
			t.Fatalf("%s: status counts (-want +got):\n%s", step, diff)
		}
	}
	check("empty")

	// Through the store, as the functions do: ingest, claim, record, cancel, expire, purge.
	var reqs []store.NewNotification
	for i := range 20 {
		reqs = append(reqs, webhookRequest("s", fmt.Sprint(i)))
	}
	later := b.now.Add(time.Hour)
	scheduled := webhookRequest("s", "scheduled")
	scheduled.Request.SendAt = &later
	expiring := webhookRequest("s", "expiring")
	soon := b.now.Add(time.Minute)
	expiring.Request.ExpiresAt = &soon
	acc, err := b.store.Insert(ctx, append(reqs, scheduled, expiring))
	require.NoError(t, err)
	check("inserted")
	// Repeated requests insert nothing (ON CONFLICT DO NOTHING), and count nothing.
	_, err = b.store.Insert(ctx, append(reqs[:5], webhookRequest("s", "new")))
	require.NoError(t, err)
	check("inserted again")

	for i, a := range acc[:10] {
		n, err := b.store.Claim(ctx, a.ID, time.Minute)
		require.NoError(t, err)
		attempt := store.Attempt{NotificationID: a.ID, Attempt: n.Attempts, StartedAt: b.now}
		switch i % 3 {
		case 0:
			attempt.Status, attempt.Outcome = notification.Delivered, "delivered"
		case 1:
			attempt.Status, attempt.Outcome = notification.Failed, "permanent"
		case 2:
			next := b.now.Add(time.Minute)
			attempt.Status, attempt.Outcome, attempt.NextAttemptAt = notification.Retrying, "transient", &next
		}
		require.NoError(t, b.store.Record(ctx, attempt))
	}
	_, err = b.store.Claim(ctx, acc[10].ID, time.Minute)
	require.NoError(t, err)
	check("claimed and recorded")

	_, err = b.store.Cancel(ctx, acc[11].ID)
	require.NoError(t, err)
	check("cancelled")

	b.now = b.now.Add(2 * time.Minute)
	_, err = b.store.Expire(ctx, 100)
	require.NoError(t, err)
	check("expired")

	// Straight SQL: a bulk import of finished rows, a bulk update that moves rows between
	// terminal states and back out of them, a no-op update, a delete.
	insertRows(t, pool, 500, notification.Email, notification.Delivered, b.now)
	insertRows(t, pool, 7, notification.SMS, notification.Failed, time.Time{})
	check("imported")
	_, err = pool.Exec(ctx, `update notifications set status = 'failed' where ctid in (
		select ctid from notifications where status = 'delivered' and channel = 'email' limit 40)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `update notifications set status = 'queued', finished_at = null where status = 'failed' and channel = 'sms'`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `update notifications set updated_at = updated_at`)
	require.NoError(t, err)
	check("updated")
	_, err = pool.Exec(ctx, `delete from notifications where ctid in (
		select ctid from notifications where status = 'delivered' limit 100)`)
	require.NoError(t, err)
	check("deleted")

	// Purge, with the store's clock past the retention of everything finished.
	b.now = b.now.Add(48 * time.Hour)
	_, err = b.store.Purge(ctx, time.Hour, 50)
	require.NoError(t, err)
	check("purged")

	// Roll-ups change nothing a reader sees, however far they fold.
	rolled, err := b.store.RollUpCounts(ctx, 3, b.now)
	require.NoError(t, err)
	require.Equal(t, 3, rolled)
	check("partly rolled up")
	for {
		rolled, err := b.store.RollUpCounts(ctx, 1000, b.now.Add(-time.Hour))
		require.NoError(t, err)
		if rolled < 1000 {
			break
		}
	}
	check("rolled up")
	var changes int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from notification_count_changes`).Scan(&changes))
	require.Zero(t, changes)

	_, err = pool.Exec(ctx, `truncate notifications cascade`)
	require.NoError(t, err)
	check("truncated")
}

func TestStatusCountsUnderConcurrentWritersAndRollUps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pool := b.store.Pool()
	insertRows(t, pool, 2000, notification.Email, notification.Queued, time.Time{})

	// Each writer moves random rows of its own share between states, bulk and one by one,
	// while two roll-ups run.
	errs := make(chan error, 1000)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for range 40 {
				to := []string{"delivered", "failed", "cancelled", "queued", "retrying"}[rnd.IntN(5)]
				_, err := pool.Exec(ctx, `update notifications set status = $1,
					finished_at = case when $1 in ('delivered', 'failed', 'cancelled') then $2::timestamptz end
					where abs(hashtext(event_id)) % 4 = $3 and random() < $4`,
					to, b.now.Add(-time.Duration(rnd.IntN(120))*time.Minute), w, rnd.Float64()/10)
				errs <- err
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 30 {
				_, err := b.store.RollUpCounts(ctx, 7, b.now.Add(-time.Hour))
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	got, err := b.store.StatusCounts(ctx)
	require.NoError(t, err)
	if diff := cmp.Diff(countedByTable(t, pool), got); diff != "" {
		t.Fatalf("status counts (-want +got):\n%s", diff)
	}
	since := b.now.Add(-30 * time.Minute)
	finished, err := b.store.FinishedSince(ctx, since)
	require.NoError(t, err)
	if diff := cmp.Diff(finishedByTable(t, pool, since), withoutZeros(finished)); diff != "" {
		t.Fatalf("finished since (-want +got):\n%s", diff)
	}
}

func TestCounterWritersDoNotWaitForEachOther(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pool := b.store.Pool()
	ids := insertRows(t, pool, 2, notification.Email, notification.Sending, time.Time{})

	// Two open transactions finish a notification each, same status, channel and minute: the
	// second would wait on the first if both updated one counter row.
	first, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer first.Rollback(ctx)
	second, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer second.Rollback(ctx)
	const finish = `update notifications set status = 'delivered', finished_at = $2 where id = $1`
	_, err = first.Exec(ctx, finish, ids[0], b.now)
	require.NoError(t, err)
	_, err = second.Exec(ctx, `set local lock_timeout = '200ms'`)
	require.NoError(t, err)
	_, err = second.Exec(ctx, finish, ids[1], b.now)
	require.NoError(t, err, "the second writer waited for the first")
	require.NoError(t, second.Commit(ctx))
	require.NoError(t, first.Commit(ctx))

	got, err := b.store.StatusCounts(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, got[notification.Delivered])
}

func TestFinishedSince(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pool := b.store.Pool()
	now := b.now // 12:00:00
	insertRows(t, pool, 3, notification.Email, notification.Delivered, now.Add(-2*time.Minute))
	insertRows(t, pool, 1, notification.Email, notification.Failed, now.Add(-14*time.Minute-30*time.Second))
	insertRows(t, pool, 2, notification.SMS, notification.Failed, now.Add(-10*time.Minute))
	insertRows(t, pool, 5, notification.SMS, notification.Delivered, now.Add(-16*time.Minute))
	insertRows(t, pool, 4, notification.Push, notification.Expired, now.Add(-3*time.Hour))
	insertRows(t, pool, 1, notification.Push, notification.Cancelled, time.Time{})

	since := now.Add(-15 * time.Minute)
	want := map[notification.Channel]map[notification.Status]int64{
		notification.Email: {notification.Delivered: 3, notification.Failed: 1},
		notification.SMS:   {notification.Failed: 2},
	}
	require.Equal(t, want, finishedByTable(t, pool, since))
	got, err := b.store.FinishedSince(ctx, since)
	require.NoError(t, err)
	require.Equal(t, want, withoutZeros(got))

	// Finish times count by the minute: from 11:45:30, the window starts at 11:45:00.
	got, err = b.store.FinishedSince(ctx, since.Add(30*time.Second))
	require.NoError(t, err)
	require.Equal(t, want, withoutZeros(got))
	got, err = b.store.FinishedSince(ctx, since.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, map[notification.Channel]map[notification.Status]int64{
		notification.Email: {notification.Delivered: 3},
		notification.SMS:   {notification.Failed: 2},
	}, withoutZeros(got))

	// Rolled up and folded before an hour ago, the window reads the same, and so do the totals.
	_, err = b.store.RollUpCounts(ctx, 1000, now.Add(-time.Hour))
	require.NoError(t, err)
	got, err = b.store.FinishedSince(ctx, since)
	require.NoError(t, err)
	require.Equal(t, want, withoutZeros(got))
	counts, err := b.store.StatusCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, countedByTable(t, pool), counts)
	var rows int
	require.NoError(t, pool.QueryRow(ctx, `select count(*) from notification_counts where finished = '-infinity'`).Scan(&rows))
	require.Equal(t, 2, rows, "the expired and cancelled push notifications are folded")

	// Folding later minutes away takes them out of any window, never out of the totals.
	_, err = b.store.RollUpCounts(ctx, 1000, now)
	require.NoError(t, err)
	got, err = b.store.FinishedSince(ctx, since)
	require.NoError(t, err)
	require.Empty(t, withoutZeros(got))
	counts, err = b.store.StatusCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, countedByTable(t, pool), counts)
}

func TestCountPastDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := b.now
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }

	var reqs []store.NewNotification
	for i, sendAt := range []*time.Time{at(time.Minute), at(2 * time.Minute), at(time.Hour)} {
		r := webhookRequest("scheduled", fmt.Sprint(i))
		r.Request.SendAt = sendAt
		reqs = append(reqs, r)
	}
	reqs = append(reqs, webhookRequest("queued", "1"))
	acc, err := b.store.Insert(ctx, reqs)
	require.NoError(t, err)
	// The queued one fails once and is due again in 30 s.
	n, err := b.store.Claim(ctx, acc[3].ID, time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.store.Record(ctx, store.Attempt{NotificationID: n.ID, Attempt: n.Attempts,
		Status: notification.Retrying, Outcome: "transient", NextAttemptAt: at(30 * time.Second), StartedAt: now}))

	for _, tc := range []struct {
		before time.Time
		want   int64
	}{
		{now, 0},
		{now.Add(30 * time.Second), 0}, // due exactly then is not past due yet
		{now.Add(31 * time.Second), 1},
		{now.Add(90 * time.Second), 2},
		{now.Add(3 * time.Minute), 3},
		{now.Add(2 * time.Hour), 4},
	} {
		got, err := b.store.CountPastDue(ctx, tc.before)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "before %s", tc.before.Sub(now))
	}

	// Past the cap, counting stops.
	_, err = b.store.Pool().Exec(ctx, `
		insert into notifications (id, source, event_id, channel, priority, status, recipient, max_attempts,
			send_at, created_at, updated_at)
		select gen_random_uuid(), 'late', i::text, 'sms', 'low', 'scheduled', 'to', 3, $1, $1, $1
		from generate_series(1, $2) as i`, now.Add(-time.Hour), store.PastDueCap)
	require.NoError(t, err)
	got, err := b.store.CountPastDue(ctx, now.Add(2*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, store.PastDueCap, got)
}
