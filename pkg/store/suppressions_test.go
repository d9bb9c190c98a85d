package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

func TestRecordSuppressesAndNamesTheAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ids := b.insert(t, webhookRequest("s", "1"), webhookRequest("s", "2"))
	for _, id := range ids {
		b.claim(t, id, time.Minute)
	}
	// Both go to the same address: one suppression, caused by the first.
	errs, err := b.store.RecordMany(ctx, []store.Attempt{
		{NotificationID: ids[0], Attempt: 1, Status: notification.Failed, Outcome: "permanent", Error: "no such user",
			Account: "backup", ErrorCode: "5.1.1", Suppress: true, StartedAt: b.now},
		{NotificationID: ids[1], Attempt: 1, Status: notification.Failed, Outcome: "permanent", Error: "no such user",
			Account: "primary", ErrorCode: "5.1.1", Suppress: true, StartedAt: b.now},
	})
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, errs)

	attempts, err := b.store.Attempts(ctx, ids[0])
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	require.Equal(t, "backup", attempts[0].Account)
	require.Equal(t, "5.1.1", attempts[0].ErrorCode)

	addr := store.Address{Channel: "webhook", Address: "https://example.com/hook"}
	other := store.Address{Channel: "email", Address: "https://example.com/hook"}
	got, err := b.store.Suppressed(ctx, []store.Address{addr, other})
	require.NoError(t, err)
	want := map[store.Address]store.Suppression{addr: {Address: addr, Reason: "no such user", ErrorCode: "5.1.1",
		NotificationID: got[addr].NotificationID, CreatedAt: b.now}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("suppressed (-want +got):\n%s", diff)
	}
	require.Contains(t, []string{ids[0], ids[1]}, got[addr].NotificationID)

	list, err := b.store.Suppressions(ctx, "webhook", "", 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	list, err = b.store.Suppressions(ctx, "sms", "", 10)
	require.NoError(t, err)
	require.Empty(t, list)

	require.NoError(t, b.store.Unsuppress(ctx, addr))
	require.ErrorIs(t, b.store.Unsuppress(ctx, addr), notification.ErrSuppressionNotFound)
	got, err = b.store.Suppressed(ctx, []store.Address{addr})
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestPutBackUndoesTheClaim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.insert(t, webhookRequest("s", "1"))[0]
	n := b.claim(t, id, time.Minute)
	require.Equal(t, 1, n.Attempts)

	require.NoError(t, b.store.PutBack(ctx, id, n.Attempts, 300*time.Millisecond))
	got := b.get(t, id)
	require.Equal(t, notification.Retrying, got.Status)
	require.Equal(t, 0, got.Attempts, "a put-back send is not an attempt")
	require.Equal(t, b.now.Add(300*time.Millisecond), got.NextAttemptAt.UTC())
	require.True(t, errors.Is(b.store.PutBack(ctx, id, n.Attempts, time.Second), notification.ErrLeaseLost), "a second put back moves nothing")

	// Cron's release queues it again once due, and the next claim is attempt 1 again.
	b.now = b.now.Add(time.Second)
	due, err := b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.Equal(t, 1, b.claim(t, id, time.Minute).Attempts)
}
