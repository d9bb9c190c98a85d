package scheduler_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/scheduler"
)

// addEntries appends n dispatch entries to the high stream and returns their ids.
func (b *testBundle) addEntries(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := b.redis.XAdd(context.Background(), &redis.XAddArgs{Stream: b.keys.Stream("high"),
			Values: []string{queue.FieldNotificationID, fmt.Sprint("n", i), queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, "0"}}).Result()
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func (b *testBundle) entryIDs(t *testing.T) []string {
	t.Helper()
	msgs, err := b.redis.XRange(context.Background(), b.keys.Stream("high"), "-", "+").Result()
	require.NoError(t, err)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// read delivers count new entries to consumer of group and returns their ids.
func (b *testBundle) read(t *testing.T, group, consumer string, count int64) []string {
	t.Helper()
	g := queue.NewGroup(b.redis, b.keys, "high", group, consumer)
	require.NoError(t, g.Create(context.Background()))
	msgs, err := g.Read(context.Background(), count, 0)
	require.NoError(t, err)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

func (b *testBundle) ack(t *testing.T, group string, ids ...string) {
	t.Helper()
	require.NoError(t, queue.NewGroup(b.redis, b.keys, "high", group, "").Ack(context.Background(), ids...))
}

func TestTrimJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.addEntries(t, 4)
	b.ack(t, "deliver", b.read(t, "deliver", "a", 3)...)
	r := b.run(t, b.scheduler, scheduler.JobTrim)
	require.Equal(t, map[string]int{"trimmed": 3}, r.Counts)
	require.True(t, r.Complete)
	require.Equal(t, ids[3:], b.entryIDs(t))
	require.Equal(t, []string{"n3"}, b.streamIDs(t, notification.High))
}
