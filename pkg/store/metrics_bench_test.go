package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// BenchmarkCountTriggers measures what the triggers that maintain the status counts
// (migrations/002_notification_counts.sql) cost the hot path: ingest's batch insert and the
// deliver functions' claim and record of a batch, each with the triggers and with them
// disabled. Run it with
//
//	go test -run '^$' -bench CountTriggers ./pkg/store/
func BenchmarkCountTriggers(b *testing.B) {
	for _, counts := range []bool{true, false} {
		name := "with-counts"
		if !counts {
			name = "without-counts"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st := testfactory.Store(ctx, b, nil)
			now := time.Now()
			if !counts {
				_, err := st.Pool().Exec(ctx, `alter table notifications disable trigger user`)
				require.NoError(b, err)
			}
			const batch = 256
			seq := 0
			insert := func() []string {
				items := make([]store.NewNotification, batch)
				for i := range items {
					seq++
					items[i] = webhookRequest("bench", fmt.Sprint(seq))
				}
				acc, err := st.Insert(ctx, items)
				require.NoError(b, err)
				ids := make([]string, len(acc))
				for i, a := range acc {
					ids[i] = a.ID
				}
				return ids
			}

			b.Run("insert", func(b *testing.B) {
				for b.Loop() {
					insert()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/row")
			})
			b.Run("claim-and-record", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					ids := insert()
					b.StartTimer()
					claimed, err := st.ClaimMany(ctx, ids, time.Minute)
					require.NoError(b, err)
					attempts := make([]store.Attempt, len(claimed))
					for j, c := range claimed {
						require.NoError(b, c.Err)
						attempts[j] = store.Attempt{NotificationID: c.Notification.ID, Attempt: c.Notification.Attempts,
							Status: notification.Delivered, Outcome: "delivered", StartedAt: now}
					}
					_, err = st.RecordMany(ctx, attempts)
					require.NoError(b, err)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/row")
			})
		})
	}
}
