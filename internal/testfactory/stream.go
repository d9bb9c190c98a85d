package testfactory

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// Stream is one priority's dispatch stream under a test's key prefix, for tests that read,
// acknowledge and trim its entries as the deliver functions and cron would.
type Stream struct {
	Client   *redis.Client
	Keys     queue.Keys
	Priority string
}

// EntryIDs returns the ids of the stream's entries, oldest first.
func (s Stream) EntryIDs(t testing.TB) []string {
	t.Helper()
	msgs, err := s.Client.XRange(t.Context(), s.Keys.Stream(s.Priority), "-", "+").Result()
	require.NoError(t, err)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// Read delivers count new entries to consumer of group, creating the group if need be, and
// returns their ids.
func (s Stream) Read(t testing.TB, group, consumer string, count int64) []string {
	t.Helper()
	g := queue.NewGroup(s.Client, s.Keys, s.Priority, group, consumer)
	require.NoError(t, g.Create(t.Context()))
	msgs, err := g.Read(t.Context(), count, 0)
	require.NoError(t, err)
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}

// Ack acknowledges ids in group.
func (s Stream) Ack(t testing.TB, group string, ids ...string) {
	t.Helper()
	require.NoError(t, queue.NewGroup(s.Client, s.Keys, s.Priority, group, "").Ack(t.Context(), ids...))
}
