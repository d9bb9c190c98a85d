package store_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// scheduledAt is a webhook request to send at.
func scheduledAt(id string, at time.Time) store.NewNotification {
	r := webhookRequest("s", id)
	r.Request.SendAt = &at
	return r
}

func (b *testBundle) get(t *testing.T, id string) notification.Notification {
	t.Helper()
	n, err := b.store.Get(context.Background(), id)
	require.NoError(t, err)
	return n
}

// scheduledEvery is n webhook requests, the first to send at at and each next one step later.
func scheduledEvery(n int, at time.Time, step time.Duration) []store.NewNotification {
	reqs := make([]store.NewNotification, n)
	for i := range reqs {
		reqs[i] = scheduledAt(fmt.Sprint(i), at.Add(time.Duration(i)*step))
	}
	return reqs
}

// finish claims id and records its first attempt as ending in status; a retry is due an hour
// later.
func (b *testBundle) finish(t *testing.T, id string, status notification.Status) {
	t.Helper()
	b.claim(t, id, time.Hour)
	next := b.now.Add(time.Hour)
	a := store.Attempt{NotificationID: id, Attempt: 1, Status: status, Outcome: "delivered", StartedAt: b.now}
	if status == notification.Retrying {
		a.NextAttemptAt = &next
	}
	require.NoError(t, b.store.Record(context.Background(), a))
}

func dueIDs(due []store.Due) []string {
	ids := make([]string, len(due))
	for i, d := range due {
		ids[i] = d.ID
	}
	sort.Strings(ids)
	return ids
}

func TestRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	start := b.now
	ids := b.insert(t, scheduledAt("later", start.Add(time.Hour)), webhookRequest("s", "queued"), webhookRequest("s", "retry"))
	later, queued, retry := ids[0], ids[1], ids[2]

	// A failed attempt makes retry due again in 5 s.
	b.claim(t, retry, time.Minute)
	next := start.Add(5 * time.Second)
	require.NoError(t, b.store.Record(ctx, store.Attempt{NotificationID: retry, Attempt: 1, Status: notification.Retrying,
		NextAttemptAt: &next, Outcome: "transient", StartedAt: start}))

	due, err := b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, due, "nothing is due yet; queued rows are not release's")

	b.now = start.Add(5*time.Second - time.Millisecond)
	due, err = b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, due, "a retry is not released a moment early")

	b.now = start.Add(5 * time.Second)
	due, err = b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []store.Due{{ID: retry, Channel: notification.Webhook, Priority: notification.High}}, due)
	n := b.get(t, retry)
	require.Equal(t, notification.Queued, n.Status)
	require.True(t, n.QueuedAt.Equal(b.now))
	require.Nil(t, n.NextAttemptAt)

	b.now = start.Add(time.Hour)
	due, err = b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []string{later}, dueIDs(due))
	require.Equal(t, notification.Queued, b.get(t, later).Status)

	due, err = b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, due, "a released row is not released again")
	require.Equal(t, notification.Queued, b.get(t, queued).Status)
}

func TestReleaseBatchesAndSkipsExpired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	at := b.now.Add(time.Minute)
	reqs := scheduledEvery(5, at, time.Second)
	gone := scheduledAt("gone", at)
	exp := at.Add(-time.Second)
	gone.Request.SendAt = &exp
	expiresAt := at.Add(time.Second)
	gone.Request.ExpiresAt = &expiresAt
	ids := b.insert(t, append(reqs, gone)...)

	b.now = at.Add(time.Hour)
	first, err := b.store.Release(ctx, 3)
	require.NoError(t, err)
	require.Len(t, first, 3)
	rest, err := b.store.Release(ctx, 3)
	require.NoError(t, err)
	require.Len(t, rest, 2, "the expired row is left to Expire")
	got := dueIDs(append(first, rest...))
	want := append([]string(nil), ids[:5]...)
	sort.Strings(want)
	require.Equal(t, want, got)
	require.Equal(t, notification.Scheduled, b.get(t, ids[5]).Status)
}

func TestReleaseConcurrentRunsMoveEachRowOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	at := b.now.Add(time.Minute)
	b.insert(t, scheduledEvery(400, at, 0)...)
	b.now = at

	var mu sync.Mutex
	var all []store.Due
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				due, err := b.store.Release(ctx, 25)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, due...)
				mu.Unlock()
				if len(due) < 25 {
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, d := range all {
		require.False(t, seen[d.ID], "notification %s released twice", d.ID)
		seen[d.ID] = true
	}
	// A run that comes back short because another holds rows stops, but the other moves them.
	require.Len(t, all, 400)
	var queued int
	require.NoError(t, b.store.Pool().QueryRow(ctx, "select count(*) from notifications where status = 'queued'").Scan(&queued))
	require.Equal(t, 400, queued)
}

func TestRequeue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	start := b.now
	ids := b.insert(t, webhookRequest("s", "old"), webhookRequest("s", "young"))
	old, young := ids[0], ids[1]
	_, err := b.store.Pool().Exec(ctx, "update notifications set queued_at = $2 where id = $1", old, start.Add(-10*time.Minute))
	require.NoError(t, err)

	none := func(context.Context, []store.Due) error {
		t.Error("enqueue called with nothing to requeue")
		return nil
	}
	failed := errors.New("redis is down")
	got, err := b.store.Requeue(ctx, 5*time.Minute, 10, func(_ context.Context, due []store.Due) error {
		require.Equal(t, []string{old}, dueIDs(due))
		return failed
	})
	require.ErrorIs(t, err, failed)
	require.Empty(t, got)
	require.True(t, b.get(t, old).QueuedAt.Equal(start.Add(-10*time.Minute)), "a failed enqueue changes nothing")

	var enqueued []store.Due
	got, err = b.store.Requeue(ctx, 5*time.Minute, 10, func(_ context.Context, due []store.Due) error {
		enqueued = due
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{old}, dueIDs(got))
	require.Equal(t, got, enqueued)
	n := b.get(t, old)
	require.Equal(t, notification.Queued, n.Status)
	require.True(t, n.QueuedAt.Equal(start), "queued_at is stamped anew")

	got, err = b.store.Requeue(ctx, 5*time.Minute, 10, none)
	require.NoError(t, err)
	require.Empty(t, got, "a requeued row waits another threshold")

	b.now = start.Add(5 * time.Minute)
	got, err = b.store.Requeue(ctx, 5*time.Minute, 10, func(context.Context, []store.Due) error { return nil })
	require.NoError(t, err)
	require.Equal(t, dueIDs([]store.Due{{ID: old}, {ID: young}}), dueIDs(got))
}

func TestRecoverLapsed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	start := b.now
	last := webhookRequest("s", "last")
	last.MaxAttempts = 1
	ids := b.insert(t, webhookRequest("s", "again"), last, webhookRequest("s", "held"))
	again, lastID, held := ids[0], ids[1], ids[2]
	for _, id := range []string{again, lastID} {
		b.claim(t, id, time.Minute)
	}
	b.claim(t, held, time.Hour)

	l, err := b.store.RecoverLapsed(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, store.Lapsed{}, l, "leases still running are left alone")

	b.now = start.Add(time.Minute)
	l, err = b.store.RecoverLapsed(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, store.Lapsed{Retrying: 1, Failed: 1}, l)

	n := b.get(t, again)
	require.Equal(t, notification.Retrying, n.Status)
	require.True(t, n.NextAttemptAt.Equal(b.now), "due at once")
	require.Equal(t, "lease ran out during attempt 1: no outcome was recorded", n.LastError)
	n = b.get(t, lastID)
	require.Equal(t, notification.Failed, n.Status)
	require.True(t, n.FailedAt.Equal(b.now))
	require.Equal(t, notification.Sending, b.get(t, held).Status)

	// The deliver function that lost its claim records too late.
	require.ErrorIs(t, b.store.Record(ctx, store.Attempt{NotificationID: again, Attempt: 1, Status: notification.Delivered,
		Outcome: "delivered", StartedAt: start}), notification.ErrLeaseLost)

	due, err := b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []string{again}, dueIDs(due), "a recovered row is released at once")
}

func TestExpire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	soon := b.now.Add(time.Minute)
	var reqs []store.NewNotification
	for _, name := range []string{"queued", "scheduled", "sending", "delivered", "forever"} {
		r := webhookRequest("s", name)
		if name != "forever" {
			r.Request.ExpiresAt = &soon
		}
		if name == "scheduled" {
			at := b.now.Add(30 * time.Second)
			r.Request.SendAt = &at
		}
		reqs = append(reqs, r)
	}
	ids := b.insert(t, reqs...)
	b.claim(t, ids[2], time.Hour)
	b.finish(t, ids[3], notification.Delivered)

	n, err := b.store.Expire(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n)

	b.now = soon
	n, err = b.store.Expire(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n, "bounded by the batch")
	n, err = b.store.Expire(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	want := []notification.Status{notification.Expired, notification.Expired, notification.Sending, notification.Delivered, notification.Queued}
	for i, id := range ids {
		got := b.get(t, id)
		require.Equal(t, want[i], got.Status, reqs[i].EventID)
		if want[i] == notification.Expired {
			require.True(t, got.ExpiredAt.Equal(soon))
		}
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	start := b.now
	ids := b.insert(t, webhookRequest("s", "old-delivered"), webhookRequest("s", "old-failed"),
		webhookRequest("s", "old-cancelled"), webhookRequest("s", "new-delivered"), webhookRequest("s", "old-queued"),
		webhookRequest("s", "old-retrying"))
	b.finish(t, ids[0], notification.Delivered)
	b.finish(t, ids[1], notification.Failed)
	_, err := b.store.Cancel(ctx, ids[2])
	require.NoError(t, err)
	b.finish(t, ids[5], notification.Retrying)
	b.now = start.Add(24 * time.Hour)
	b.finish(t, ids[3], notification.Delivered)

	b.now = start.Add(24*time.Hour + time.Second)
	n, err := b.store.Purge(ctx, 24*time.Hour, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = b.store.Purge(ctx, 24*time.Hour, 2)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = b.store.Purge(ctx, 24*time.Hour, 2)
	require.NoError(t, err)
	require.Zero(t, n)

	for i, id := range ids {
		_, err := b.store.Get(ctx, id)
		if i < 3 {
			require.ErrorIs(t, err, notification.ErrNotFound, "terminal and older than retention: purged")
		} else {
			require.NoError(t, err, "recent or unfinished: kept")
		}
	}
	var attempts int
	require.NoError(t, b.store.Pool().QueryRow(ctx,
		"select count(*) from delivery_attempts where notification_id = any($1::uuid[])", ids[:3]).Scan(&attempts))
	require.Zero(t, attempts, "their attempts went with them")
	require.NoError(t, b.store.Pool().QueryRow(ctx, "select count(*) from delivery_attempts").Scan(&attempts))
	require.Equal(t, 2, attempts, "other notifications' attempts are kept")
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ids := b.insert(t, webhookRequest("s", "queued"), scheduledAt("scheduled", b.now.Add(time.Hour)),
		webhookRequest("s", "sending"), webhookRequest("s", "delivered"))
	queued, scheduled, sending, delivered := ids[0], ids[1], ids[2], ids[3]
	b.claim(t, sending, time.Hour)
	b.finish(t, delivered, notification.Delivered)

	for _, id := range []string{queued, scheduled} {
		n, err := b.store.Cancel(ctx, id)
		require.NoError(t, err)
		require.Equal(t, notification.Cancelled, n.Status)
		require.True(t, n.CancelledAt.Equal(b.now))
	}
	_, err := b.store.Claim(ctx, queued, time.Minute)
	require.ErrorIs(t, err, notification.ErrNotClaimable, "a stream entry left for a cancelled row is never sent")

	n, err := b.store.Cancel(ctx, queued)
	require.ErrorIs(t, err, notification.ErrNotCancellable)
	require.Equal(t, notification.Cancelled, n.Status)
	n, err = b.store.Cancel(ctx, sending)
	require.ErrorIs(t, err, notification.ErrNotCancellable)
	require.ErrorContains(t, err, "being sent")
	require.Equal(t, notification.Sending, n.Status)
	n, err = b.store.Cancel(ctx, delivered)
	require.ErrorIs(t, err, notification.ErrNotCancellable)
	require.Equal(t, notification.Delivered, n.Status)
	_, err = b.store.Cancel(ctx, "0190c5a4-0000-7000-8000-000000000000")
	require.ErrorIs(t, err, notification.ErrNotFound)
	_, err = b.store.Cancel(ctx, "not-a-uuid")
	require.ErrorIs(t, err, notification.ErrNotFound)

	var finished int
	require.NoError(t, b.store.Pool().QueryRow(ctx,
		"select count(*) from notifications where status = 'cancelled' and finished_at is not null").Scan(&finished))
	require.Equal(t, 2, finished, "purge finds cancelled rows by finished_at")
}
