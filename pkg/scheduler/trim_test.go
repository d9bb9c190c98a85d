package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/testfactory"
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

// high is the high stream, for reading, acknowledging and listing its entries.
func (b *testBundle) high() testfactory.Stream {
	return testfactory.Stream{Client: b.redis, Keys: b.keys, Priority: "high"}
}

func TestTrimJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.addEntries(t, 4)
	b.high().Ack(t, "deliver", b.high().Read(t, "deliver", "a", 3)...)
	r := b.run(t, b.scheduler, scheduler.JobTrim)
	require.Equal(t, map[string]int{"trimmed": 3, "dead_letters_trimmed": 0}, r.Counts)
	require.True(t, r.Complete)
	require.Equal(t, ids[3:], b.high().EntryIDs(t))
	require.Equal(t, []string{"n3"}, b.streamIDs(t, notification.High))
}

func TestTrimJobBoundsDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, tc := range map[string]struct {
		maxLen  int64
		maxAge  time.Duration
		want    []string // the dead-letter entries left, by notification id
		trimmed int
	}{
		"by age":           {maxAge: 90 * time.Minute, want: []string{"n3", "n4"}, trimmed: 3},
		"by length":        {maxLen: 2, want: []string{"n3", "n4"}, trimmed: 3},
		"by both":          {maxAge: 150 * time.Minute, maxLen: 2, want: []string{"n3", "n4"}, trimmed: 3},
		"the older bound":  {maxAge: 30 * time.Minute, maxLen: 4, want: []string{"n4"}, trimmed: 4},
		"unbounded":        {want: []string{"n0", "n1", "n2", "n3", "n4"}},
		"bounds not reach": {maxAge: 10 * time.Hour, maxLen: 10, want: []string{"n0", "n1", "n2", "n3", "n4"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			// Five dead letters given up on 4 h, 3 h, ... 0 h before the clock's now.
			for i := range 5 {
				at := b.clock.Now().Add(-time.Duration(4-i) * time.Hour)
				require.NoError(t, b.redis.XAdd(ctx, &redis.XAddArgs{Stream: b.keys.DeadLetter("high"),
					ID:     fmt.Sprintf("%d-0", at.UnixMilli()),
					Values: []string{queue.FieldNotificationID, fmt.Sprint("n", i), queue.FieldReason, "sink answered 503"}}).Err())
			}
			s := b.with(func(c *scheduler.Config) { c.DeadLetterMaxLen, c.DeadLetterRetention = tc.maxLen, tc.maxAge })
			r := b.run(t, s, scheduler.JobTrim)
			require.Equal(t, tc.trimmed, r.Counts["dead_letters_trimmed"])
			dead, err := queue.DeadLetters(ctx, b.redis, b.keys, "high", 100)
			require.NoError(t, err)
			got := make([]string, len(dead))
			for i, d := range dead {
				got[i] = d.NotificationID
			}
			require.Empty(t, cmp.Diff(tc.want, got), "(-want +got)")
		})
	}
}
