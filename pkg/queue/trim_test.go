package queue_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// addEntries appends n dispatch entries to the high stream and returns their ids.
func (b groupBundle) addEntries(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.add(t, fmt.Sprint("n", i))
	}
	return ids
}

// high is the high stream, for reading, acknowledging and listing its entries.
func (b groupBundle) high() testfactory.Stream {
	return testfactory.Stream{Client: b.client, Keys: b.keys, Priority: "high"}
}

func (b groupBundle) trim(t *testing.T) int64 {
	t.Helper()
	n, err := queue.Trim(t.Context(), b.client, b.keys.Stream("high"))
	require.NoError(t, err)
	return n
}

func TestTrimKeepsPendingEntries(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ids := b.addEntries(t, 10)
	read := b.high().Read(t, "deliver", "a", 6)
	require.Equal(t, ids[:6], read)
	// Entries 0-3 acknowledged, 4 and 5 pending, 6-9 never delivered.
	b.high().Ack(t, "deliver", ids[:4]...)

	require.Equal(t, int64(4), b.trim(t))
	require.Equal(t, ids[4:], b.high().EntryIDs(t), "pending and undelivered entries stay")

	// An acknowledged entry after a pending one stays until the pending one is acknowledged.
	b.high().Ack(t, "deliver", ids[5])
	require.Zero(t, b.trim(t))
	b.high().Ack(t, "deliver", ids[4])
	require.Equal(t, int64(2), b.trim(t))
	require.Equal(t, ids[6:], b.high().EntryIDs(t), "the backlog no consumer has read stays")

	// The pending entry of the second consumer still holds the stream.
	b.high().Read(t, "deliver", "b", 2)
	b.high().Read(t, "deliver", "a", 2)
	b.high().Ack(t, "deliver", ids[8], ids[9])
	require.Zero(t, b.trim(t))
	b.high().Ack(t, "deliver", ids[6])
	require.Equal(t, int64(1), b.trim(t))
	require.Equal(t, ids[7:], b.high().EntryIDs(t))
	b.high().Ack(t, "deliver", ids[7])
	require.Equal(t, int64(3), b.trim(t), "all acknowledged, nothing undelivered: all go")
	require.Empty(t, b.high().EntryIDs(t))
}

func TestTrimHonoursEveryGroup(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ids := b.addEntries(t, 5)
	b.high().Ack(t, "fast", b.high().Read(t, "fast", "a", 5)...)
	b.high().Ack(t, "slow", b.high().Read(t, "slow", "a", 2)...)
	require.Equal(t, int64(2), b.trim(t), "the slow group has not read the rest")
	require.Equal(t, ids[2:], b.high().EntryIDs(t))

	// A group created at the stream's start needs everything.
	require.NoError(t, b.client.XGroupCreate(t.Context(), b.keys.Stream("high"), "late", "0").Err())
	require.Zero(t, b.trim(t))
	require.Equal(t, ids[2:], b.high().EntryIDs(t))
}

func TestTrimLeavesStreamsWithoutGroups(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	require.Zero(t, b.trim(t), "no stream at all")

	ids := b.addEntries(t, 3)
	require.Zero(t, b.trim(t), "no group yet")
	b.high().Ack(t, "deliver", b.high().Read(t, "deliver", "a", 3)...)
	// Knative's RedisStreamSource destroys its group when it shuts down: entries stay for the
	// group that comes next.
	require.NoError(t, b.client.XGroupDestroy(t.Context(), b.keys.Stream("high"), "deliver").Err())
	require.Zero(t, b.trim(t))
	require.Equal(t, ids, b.high().EntryIDs(t))
}
