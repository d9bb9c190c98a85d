package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/queue"
)

type groupBundle struct {
	client *redis.Client
	keys   queue.Keys
}

func setupGroup(t testing.TB) groupBundle {
	t.Helper()
	url, prefix := pulsetest.Redis(t)
	return groupBundle{client: pulsetest.RedisClient(t, url), keys: queue.NewKeys(prefix)}
}

// add appends an entry with the dispatch fields to the high stream and returns its id.
func (b groupBundle) add(t *testing.T, notificationID string) string {
	t.Helper()
	id, err := b.client.XAdd(t.Context(), &redis.XAddArgs{
		Stream: b.keys.Stream("high"),
		Values: []string{queue.FieldNotificationID, notificationID, queue.FieldChannel, "email", queue.FieldEnqueuedAt, "1700000000000"},
	}).Result()
	require.NoError(t, err)
	return id
}

func (b groupBundle) group(t *testing.T, consumer string) *queue.Group {
	t.Helper()
	g := queue.NewGroup(b.client, b.keys, "high", "deliver", consumer)
	require.NoError(t, g.Create(t.Context()))
	return g
}

// delivered adds an entry for each of notificationIDs and delivers them to g, with which they
// stay pending; it returns their ids.
func (b groupBundle) delivered(t *testing.T, g *queue.Group, notificationIDs ...string) []string {
	t.Helper()
	ids := make([]string, len(notificationIDs))
	for i, n := range notificationIDs {
		ids[i] = b.add(t, n)
	}
	got, err := g.Read(t.Context(), int64(len(ids)), 10*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, got, len(ids))
	return ids
}

func fields(notificationID string) map[string]string {
	return map[string]string{
		queue.FieldNotificationID: notificationID,
		queue.FieldChannel:        "email",
		queue.FieldEnqueuedAt:     "1700000000000",
	}
}

func TestGroupCreate(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := t.Context()

	// Entries added before the group exists are delivered: the group starts at "0".
	id := b.add(t, "n1")
	g := queue.NewGroup(b.client, b.keys, "high", "deliver", "a")
	require.NoError(t, g.Create(ctx))
	require.NoError(t, g.Create(ctx), "an existing group is not an error")

	got, err := g.Read(ctx, 10, 10*time.Millisecond)
	require.NoError(t, err)
	if diff := cmp.Diff([]queue.Message{{ID: id, Fields: fields("n1")}}, got); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}

	// Creating on a missing stream creates the stream.
	low := queue.NewGroup(b.client, b.keys, "low", "deliver", "a")
	require.NoError(t, low.Create(ctx))
	groups, err := b.client.XInfoGroups(ctx, b.keys.Stream("low")).Result()
	require.NoError(t, err)
	require.Len(t, groups, 1)
	require.Equal(t, "deliver", groups[0].Name)
}

func TestGroupReadAck(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := t.Context()
	g := b.group(t, "a")
	id1, id2 := b.add(t, "n1"), b.add(t, "n2")

	got, err := g.Read(ctx, 1, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id1, Fields: fields("n1")}}, got, "count bounds the read")
	got, err = g.Read(ctx, 10, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id2, Fields: fields("n2")}}, got)

	got, err = g.Read(ctx, 10, 10*time.Millisecond)
	require.NoError(t, err)
	require.Empty(t, got, "nothing new within block")

	require.NoError(t, g.Ack(ctx, id1))
	require.NoError(t, g.Ack(ctx))
	pending, err := g.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 10})
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, id2, pending[0].ID)
	require.Equal(t, "a", pending[0].Consumer)
	require.Equal(t, int64(1), pending[0].Deliveries)
}

func TestGroupReadPending(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := t.Context()
	a := b.group(t, "a")
	other := b.group(t, "other")
	ids := b.delivered(t, a, "n1", "n2")
	id1, id2 := ids[0], ids[1]
	id3 := b.delivered(t, other, "n3")[0]

	// Page through a's own pending entries; other's entry is not among them.
	got, err := a.ReadPending(ctx, "0", 1)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id1, Fields: fields("n1")}}, got)
	got, err = a.ReadPending(ctx, id1, 10)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id2, Fields: fields("n2")}}, got)
	got, err = a.ReadPending(ctx, id2, 10)
	require.NoError(t, err)
	require.Empty(t, got)

	pending, err := a.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 10, Consumer: "a"})
	require.NoError(t, err)
	require.Len(t, pending, 2)
	require.Equal(t, int64(2), pending[0].Deliveries, "reading a pending entry counts as a delivery")

	// An entry trimmed while pending comes back without fields.
	require.NoError(t, b.client.XDel(ctx, b.keys.Stream("high"), id1).Err())
	got, err = a.ReadPending(ctx, "0", 10)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id1}, {ID: id2, Fields: fields("n2")}}, got)

	pending, err = other.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 10, Consumer: "other"})
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, id3, pending[0].ID)
}

func TestGroupClaim(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := t.Context()
	a, c := b.group(t, "a"), b.group(t, "c")
	id := b.delivered(t, a, "n1")[0]

	got, err := c.Claim(ctx, time.Hour, id)
	require.NoError(t, err)
	require.Empty(t, got, "an entry delivered recently stays with its consumer")

	pending, err := c.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 10, MinIdle: time.Hour})
	require.NoError(t, err)
	require.Empty(t, pending, "MinIdle filters")

	got, err = c.Claim(ctx, 0, id)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id, Fields: fields("n1")}}, got)
	pending, err = c.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 10})
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, "c", pending[0].Consumer)
	require.Equal(t, int64(2), pending[0].Deliveries)

	got, err = c.Claim(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestGroupDeadLetter(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := t.Context()
	g := b.group(t, "a")
	ids := b.delivered(t, g, "n1", "n2", "n3")
	id1, id2, id3 := ids[0], ids[1], ids[2]
	require.NoError(t, g.Ack(ctx, id3))
	require.NoError(t, b.client.XDel(ctx, b.keys.Stream("high"), id2).Err())
	failedAt := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

	moved, err := g.DeadLetter(ctx, id1, "sink answered 500", time.Hour, failedAt)
	require.NoError(t, err)
	require.False(t, moved, "an entry delivered recently is left alone")

	moved, err = g.DeadLetter(ctx, id1, "sink answered 500", 0, failedAt)
	require.NoError(t, err)
	require.True(t, moved)
	moved, err = g.DeadLetter(ctx, id2, "gone", 0, failedAt)
	require.NoError(t, err)
	require.True(t, moved, "an entry trimmed while pending still leaves a trace")
	moved, err = g.DeadLetter(ctx, id3, "acked", 0, failedAt)
	require.NoError(t, err)
	require.False(t, moved, "an acknowledged entry is not moved")

	dead, err := b.client.XRange(ctx, b.keys.DeadLetter("high"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, dead, 2)
	want := []map[string]any{
		{
			queue.FieldNotificationID: "n1", queue.FieldChannel: "email", queue.FieldEnqueuedAt: "1700000000000",
			queue.FieldReason: "sink answered 500", queue.FieldOriginalID: id1, queue.FieldDeliveries: "1",
			queue.FieldFailedAt: "2026-01-02T03:04:05.000000006Z",
		},
		{
			queue.FieldReason: "gone", queue.FieldOriginalID: id2, queue.FieldDeliveries: "1",
			queue.FieldFailedAt: "2026-01-02T03:04:05.000000006Z",
		},
	}
	got := []map[string]any{dead[0].Values, dead[1].Values}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead-letter entries (-want +got):\n%s", diff)
	}

	pending, err := g.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 10})
	require.NoError(t, err)
	require.Empty(t, pending, "dead-lettered entries are acknowledged")
}

func TestGroupNoGroup(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := t.Context()
	g := b.group(t, "a")
	id := b.delivered(t, g, "n1")[0]
	require.NoError(t, b.client.XGroupDestroy(ctx, b.keys.Stream("high"), "deliver").Err())

	_, err := g.Read(ctx, 1, 10*time.Millisecond)
	require.ErrorIs(t, err, queue.ErrNoGroup)
	_, err = g.ReadPending(ctx, "0", 1)
	require.ErrorIs(t, err, queue.ErrNoGroup)
	_, err = g.Pending(ctx, queue.PendingRange{Start: "-", End: "+", Count: 1})
	require.ErrorIs(t, err, queue.ErrNoGroup)
	_, err = g.Claim(ctx, 0, id)
	require.ErrorIs(t, err, queue.ErrNoGroup)
	_, err = g.DeadLetter(ctx, id, "x", 0, time.Now())
	require.ErrorIs(t, err, queue.ErrNoGroup)

	// A blocked read whose stream is deleted under it is told so. The read runs on a client
	// of its own, named so that CLIENT LIST shows when it is blocked.
	require.NoError(t, g.Create(ctx))
	got, err := g.Read(ctx, 10, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id, Fields: fields("n1")}}, got, "a group created again starts from the first entry")
	opts := *b.client.Options()
	opts.ClientName = pulsetest.Name("blocked-")
	reader := redis.NewClient(&opts)
	t.Cleanup(func() { reader.Close() })
	blocked := make(chan error, 1)
	go func() {
		_, err := queue.NewGroup(reader, b.keys, "high", "deliver", "a").Read(context.Background(), 1, 5*time.Second)
		blocked <- err
	}()
	require.Eventually(t, func() bool {
		clients, err := b.client.ClientList(ctx).Result()
		require.NoError(t, err)
		for _, line := range strings.Split(clients, "\n") {
			if strings.Contains(line, "name="+opts.ClientName+" ") && strings.Contains(line, "cmd=xreadgroup") && strings.Contains(line, "flags=b") {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, b.client.Del(ctx, b.keys.Stream("high")).Err())
	require.ErrorIs(t, <-blocked, queue.ErrNoGroup)

	// Creating again recovers, from a fresh stream.
	require.NoError(t, g.Create(ctx))
	id = b.add(t, "n2")
	got, err = g.Read(ctx, 1, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, []queue.Message{{ID: id, Fields: fields("n2")}}, got)
}
