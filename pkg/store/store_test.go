package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

type testBundle struct {
	store *store.Store
	now   time.Time
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	b.store = testfactory.Store(ctx, t, &testfactory.StoreOpts{Now: func() time.Time { return b.now }})
	return b
}

// insert stores the requests and returns their ids.
func (b *testBundle) insert(t *testing.T, reqs ...store.NewNotification) []string {
	t.Helper()
	acc, err := b.store.Insert(context.Background(), reqs)
	require.NoError(t, err)
	ids := make([]string, len(acc))
	for i, a := range acc {
		ids[i] = a.ID
	}
	return ids
}

// claim claims id for sending under lease and returns it as claimed.
func (b *testBundle) claim(t *testing.T, id string, lease time.Duration) notification.Notification {
	t.Helper()
	n, err := b.store.Claim(context.Background(), id, lease)
	require.NoError(t, err)
	return n
}

func webhookRequest(source, id string) store.NewNotification {
	return store.NewNotification{Source: source, EventID: id, MaxAttempts: 3, Request: notification.Request{
		Channel: notification.Webhook, To: "https://example.com/hook", Priority: notification.High,
		Data: json.RawMessage(`{"order":42}`), Metadata: map[string]string{"tenant": "t1"},
	}}
}

func TestInsertIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	first, err := b.store.Insert(ctx, []store.NewNotification{webhookRequest("s", "1"), webhookRequest("s", "2"), webhookRequest("s", "1")})
	require.NoError(t, err)
	require.Len(t, first, 3)
	require.False(t, first[0].Duplicate)
	require.False(t, first[1].Duplicate)
	require.True(t, first[2].Duplicate)
	require.Equal(t, first[0].ID, first[2].ID)
	require.Equal(t, notification.Queued, first[0].Status)

	again, err := b.store.Insert(ctx, []store.NewNotification{webhookRequest("s", "2"), webhookRequest("other", "1")})
	require.NoError(t, err)
	require.True(t, again[0].Duplicate)
	require.Equal(t, first[1].ID, again[0].ID)
	require.False(t, again[1].Duplicate)

	var count int
	require.NoError(t, b.store.Pool().QueryRow(ctx, "select count(*) from notifications").Scan(&count))
	require.Equal(t, 3, count)

	n, err := b.store.GetByEvent(ctx, "s", "1")
	require.NoError(t, err)
	require.Equal(t, first[0].ID, n.ID)
	require.JSONEq(t, `{"order":42}`, string(n.Data))
	require.Equal(t, map[string]string{"tenant": "t1"}, n.Metadata)
}

// TestInsertAnswersEachItemInPlace: in a statement mixing new requests, repeats of stored ones
// and repeats within the statement, each answer lands at its item's position, and every row
// holds its own values, null columns included.
func TestInsertAnswersEachItemInPlace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	stored, err := b.store.Insert(ctx, []store.NewNotification{webhookRequest("s", "old")})
	require.NoError(t, err)

	later, expires := b.now.Add(time.Hour).UTC().Truncate(time.Microsecond), b.now.Add(2*time.Hour).UTC().Truncate(time.Microsecond)
	scheduled := webhookRequest("s", "scheduled")
	scheduled.Request.SendAt, scheduled.Request.ExpiresAt = &later, &expires
	bare := webhookRequest("s", "bare")
	bare.Request.Data, bare.Request.Metadata = nil, nil
	got, err := b.store.Insert(ctx, []store.NewNotification{
		bare, webhookRequest("s", "bare"), webhookRequest("s", "old"), scheduled, webhookRequest("s", "old"),
	})
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, want := range []struct {
		eventID   string
		duplicate bool
		status    notification.Status
	}{{"bare", false, notification.Queued}, {"bare", true, notification.Queued}, {"old", true, notification.Queued},
		{"scheduled", false, notification.Scheduled}, {"old", true, notification.Queued}} {
		require.Equal(t, want.eventID, got[i].EventID, "item %d", i)
		require.Equal(t, want.duplicate, got[i].Duplicate, "item %d", i)
		require.Equal(t, want.status, got[i].Status, "item %d", i)
	}
	require.Equal(t, got[0].ID, got[1].ID)
	require.Equal(t, stored[0].ID, got[2].ID)
	require.Equal(t, stored[0].ID, got[4].ID)

	n, err := b.store.Get(ctx, got[3].ID)
	require.NoError(t, err)
	require.Equal(t, "scheduled", n.EventID)
	require.True(t, later.Equal(*n.SendAt), "send_at %v", n.SendAt)
	require.True(t, expires.Equal(*n.ExpiresAt), "expires_at %v", n.ExpiresAt)
	require.JSONEq(t, `{"order":42}`, string(n.Data))
	n, err = b.store.Get(ctx, got[0].ID)
	require.NoError(t, err)
	require.Equal(t, "bare", n.EventID)
	require.Nil(t, n.SendAt)
	require.Nil(t, n.ExpiresAt)
	require.Nil(t, n.Data)
	require.Empty(t, n.Metadata)
}

func TestScheduledInsert(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := webhookRequest("s", "1")
	later := b.now.Add(time.Hour)
	req.Request.SendAt = &later
	got, err := b.store.Insert(context.Background(), []store.NewNotification{req})
	require.NoError(t, err)
	require.Equal(t, notification.Scheduled, got[0].Status)
}

func TestClaimAndRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.insert(t, webhookRequest("s", "1"))[0]

	n, err := b.store.Claim(ctx, id, time.Minute)
	require.NoError(t, err)
	require.Equal(t, notification.Sending, n.Status)
	require.Equal(t, 1, n.Attempts)

	_, err = b.store.Claim(ctx, id, time.Minute)
	require.ErrorIs(t, err, notification.ErrNotClaimable)
	_, err = b.store.Claim(ctx, "0190c5a4-0000-7000-8000-000000000000", time.Minute)
	require.ErrorIs(t, err, notification.ErrNotFound)

	next := b.now.Add(5 * time.Second)
	require.NoError(t, b.store.Record(ctx, store.Attempt{NotificationID: id, Attempt: 1, Status: notification.Retrying,
		NextAttemptAt: &next, Outcome: "transient", StatusCode: 503, Error: "receiver answered 503", StartedAt: b.now, Duration: time.Second}))
	// A second record under the same claim is a lost lease: the row has moved on.
	require.ErrorIs(t, b.store.Record(ctx, store.Attempt{NotificationID: id, Attempt: 1, Status: notification.Delivered,
		Outcome: "delivered", StartedAt: b.now}), notification.ErrLeaseLost)

	n = b.get(t, id)
	require.Equal(t, notification.Retrying, n.Status)
	require.Equal(t, "receiver answered 503", n.LastError)
	require.True(t, n.NextAttemptAt.Equal(next))

	attempts, err := b.store.Attempts(ctx, id)
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	require.Equal(t, 503, attempts[0].StatusCode)
	require.Equal(t, time.Second, attempts[0].Duration)
}

func TestClaimExpired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	req := webhookRequest("s", "1")
	soon := b.now.Add(time.Minute)
	req.Request.ExpiresAt = &soon
	id := b.insert(t, req)[0]

	b.now = b.now.Add(2 * time.Minute)
	_, err := b.store.Claim(ctx, id, time.Minute)
	require.ErrorIs(t, err, notification.ErrNotClaimable)
	n := b.get(t, id)
	require.Equal(t, notification.Expired, n.Status)
	require.NotNil(t, n.ExpiredAt)
}

func TestClaimManyAndRecordMany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ids := b.insert(t, webhookRequest("s", "1"), webhookRequest("s", "2"))
	a, c := ids[0], ids[1]
	missing := "0190c5a4-0000-7000-8000-000000000000"

	claimed, err := b.store.ClaimMany(ctx, []string{a, c, a, missing, "not-a-uuid"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, claimed[0].Err)
	require.NoError(t, claimed[1].Err)
	require.ErrorIs(t, claimed[2].Err, notification.ErrNotClaimable, "an id named twice is claimed once")
	require.ErrorIs(t, claimed[3].Err, notification.ErrNotFound)
	require.ErrorIs(t, claimed[4].Err, notification.ErrNotFound)
	require.Equal(t, a, claimed[0].Notification.ID)
	require.Equal(t, c, claimed[1].Notification.ID)

	errs, err := b.store.RecordMany(ctx, []store.Attempt{
		{NotificationID: a, Attempt: 1, Status: notification.Delivered, Outcome: "delivered", StatusCode: 200, StartedAt: b.now},
		{NotificationID: c, Attempt: 2, Status: notification.Delivered, Outcome: "delivered", StatusCode: 200, StartedAt: b.now},
	})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], notification.ErrLeaseLost, "attempt 2 does not hold the claim of attempt 1")
	require.Equal(t, notification.Delivered, b.get(t, a).Status)
	require.Equal(t, notification.Sending, b.get(t, c).Status)
}

// TestClaimManyTakesEveryFormOfAnID: an id in capitals or braces names the same notification,
// and its claim is reported as the claim it is, not as "not claimable" while the row sits
// claimed until its lease runs out.
func TestClaimManyTakesEveryFormOfAnID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ids := b.insert(t, webhookRequest("s", "1"), webhookRequest("s", "2"))
	claimed, err := b.store.ClaimMany(ctx, []string{strings.ToUpper(ids[0]), "{" + ids[1] + "}"}, time.Minute)
	require.NoError(t, err)
	for i, c := range claimed {
		require.NoError(t, c.Err, ids[i])
		require.Equal(t, ids[i], c.Notification.ID)
		require.Equal(t, 1, c.Notification.Attempts)
		require.Equal(t, notification.Sending, b.get(t, ids[i]).Status)
	}
}

// TestConcurrentClaimsOfTheSameIDs claims the same notifications from several batches at once,
// each naming them in a different order, as duplicate dispatches to several deliver pods do:
// every notification is claimed exactly once and no statement fails (a deadlock would).
func TestConcurrentClaimsOfTheSameIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const rows, claimers = 300, 4
	for round := range 5 {
		reqs := make([]store.NewNotification, rows)
		for i := range reqs {
			reqs[i] = webhookRequest("s", fmt.Sprintf("%d-%d", round, i))
		}
		ids := b.insert(t, reqs...)
		claims := make([][]store.Claimed, claimers)
		errs := make([]error, claimers)
		var wg sync.WaitGroup
		for c := range claimers {
			order := slices.Clone(ids)
			rand.New(rand.NewPCG(uint64(round), uint64(c))).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			wg.Go(func() { claims[c], errs[c] = b.store.ClaimMany(ctx, order, time.Minute) })
		}
		wg.Wait()
		won := map[string]int{}
		for c := range claimers {
			require.NoError(t, errs[c], "round %d, claimer %d", round, c)
			for _, cl := range claims[c] {
				if cl.Err == nil {
					won[cl.Notification.ID]++
				} else {
					require.ErrorIs(t, cl.Err, notification.ErrNotClaimable)
				}
			}
		}
		require.Len(t, won, rows, "round %d: every notification claimed", round)
		for id, n := range won {
			require.Equal(t, 1, n, "round %d: %s claimed %d times", round, id, n)
		}
	}
}

// TestStorageParameters checks that the migrations leave the hot tables with the storage
// parameters docs/performance.md describes.
func TestStorageParameters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows, err := b.store.Pool().Query(context.Background(), `
		select c.relname, coalesce(c.reloptions, '{}')
		from pg_class c
		where c.relnamespace = current_schema()::regnamespace
			and c.relname in ('notifications', 'delivery_attempts', 'notification_counts')`)
	require.NoError(t, err)
	got := map[string][]string{}
	for rows.Next() {
		var name string
		var opts []string
		require.NoError(t, rows.Scan(&name, &opts))
		slices.Sort(opts)
		got[name] = opts
	}
	require.NoError(t, rows.Err())
	want := map[string][]string{
		"notifications": {"autovacuum_analyze_scale_factor=0.05", "autovacuum_vacuum_insert_scale_factor=0.05",
			"autovacuum_vacuum_scale_factor=0.02", "autovacuum_vacuum_threshold=1000", "fillfactor=90"},
		"delivery_attempts": {"autovacuum_vacuum_insert_scale_factor=0.05", "autovacuum_vacuum_scale_factor=0.02",
			"autovacuum_vacuum_threshold=1000"},
		"notification_counts": {"fillfactor=50"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("storage parameters (-want +got):\n%s", diff)
	}
}

// TestClaimCommitsAsynchronouslyAlone checks that the claim's asynchronous commit stays in its
// own transaction: the connection it ran on commits as configured afterwards, so a record
// that follows on it still waits for its WAL to reach the disk.
func TestClaimCommitsAsynchronouslyAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := &testBundle{now: time.Now()}
	b.store = testfactory.Store(ctx, t, &testfactory.StoreOpts{MaxConns: 1})
	ids := b.insert(t, webhookRequest("s", "1"), webhookRequest("s", "2"))

	claimed, err := b.store.ClaimMany(ctx, ids, time.Minute)
	require.NoError(t, err)
	for _, c := range claimed {
		require.NoError(t, c.Err)
	}
	var setting string
	require.NoError(t, b.store.Pool().QueryRow(ctx, `show synchronous_commit`).Scan(&setting))
	require.Equal(t, "on", setting)
	again, err := b.store.ClaimMany(ctx, ids, time.Minute)
	require.NoError(t, err)
	for _, c := range again {
		require.ErrorIs(t, c.Err, notification.ErrNotClaimable)
	}
}
