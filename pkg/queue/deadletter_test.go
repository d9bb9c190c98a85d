package queue_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// FuzzRedriveEntryID feeds Redrive the entry ids an operator types: an id is either refused as
// not a stream id, or looked up and reported missing; nothing is added to the stream.
func FuzzRedriveEntryID(f *testing.F) {
	for _, seed := range []string{"1-1", "0-0", "1764396000000-0", "18446744073709551615-18446744073709551615",
		"", "-", "1-", "-1", "1", "abc", "1-1-1", "+", "$", "1-1\x00", "१-१", " 1-1"} {
		f.Add(seed)
	}
	b := setupGroup(f)
	f.Fuzz(func(t *testing.T, id string) {
		got, err := queue.Redrive(t.Context(), b.client, b.keys, "high", []string{id}, nil, time.Now())
		if err != nil {
			require.True(t, errors.Is(err, queue.ErrBadEntryID), "%q: %v", id, err)
			require.NotContains(t, err.Error(), "ERR", "Redis never saw %q", id)
			return
		}
		require.Equal(t, map[string]string{id: queue.Missing}, got)
		n, err := b.client.XLen(t.Context(), b.keys.Stream("high")).Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
