package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
)

// TestClaimFindsRowsByPrimaryKey checks byKeyOnly: with statistics taken while no row was
// queued or sending, and a backlog of queued and sending rows since, the claim and record
// statements still find their rows by primary key instead of scanning the backlog's partial
// index. The same claim written with a literal state reads the partial index, which is what
// the test guards against.
func TestClaimFindsRowsByPrimaryKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := Open(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := New(pool.Pool(), time.Now)
	require.NoError(t, s.Migrate(ctx))

	_, err = s.pool.Exec(ctx, `
		insert into notifications (id, source, event_id, channel, priority, status, recipient,
			max_attempts, created_at, updated_at, finished_at)
		select gen_random_uuid(), 'plan', 'e' || g, 'webhook', 'high', 'delivered', 'https://example.com/',
			8, now(), now(), now()
		from generate_series(1, 20000) g`)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `analyze notifications`)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `
		update notifications set status = case when event_id < 'e3' then 'sending' else 'queued' end,
			queued_at = now(), lease_until = now(), finished_at = null
		where event_id < 'e6'`)
	require.NoError(t, err)

	ids := make([]uuid.UUID, 16)
	for i := range ids {
		ids[i] = uuid.New()
	}
	now := time.Now()
	plan := func(sql string, args ...any) string {
		t.Helper()
		rows, err := s.pool.Query(ctx, "explain (format text) "+sql, args...)
		require.NoError(t, err)
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			lines = append(lines, line)
		}
		require.NoError(t, rows.Err())
		return strings.Join(lines, "\n")
	}

	claim := plan(claimSQL, ids, now, now.Add(time.Minute))
	require.Contains(t, claim, "notifications_pkey", claim)
	require.NotContains(t, claim, "notifications_queued_idx", claim)
	require.NotContains(t, claim, "notifications_status_created_idx", claim)

	literal := plan(strings.Replace(claimSQL, "status = (select 'queued')", "status = 'queued'", 1), ids, now, now.Add(time.Minute))
	// The backlog is read through the state's partial index or the list's (status, created_at,
	// id) index (migrations/003_list.sql), whichever the planner costs lower.
	require.Regexp(t, `notifications_(queued|status_created)_idx`, literal, "the hazard byKeyOnly avoids is gone; the test no longer proves anything:\n%s", literal)

	n := len(ids)
	texts := make([]string, n)
	ints := make([]int32, n)
	times := make([]time.Time, n)
	record := plan(recordSQL, ids, ints, texts, make([]pgtype.Timestamptz, n), texts, texts, texts, ints,
		times, make([]float64, n), now, texts, texts, make([]bool, n))
	require.Contains(t, record, "notifications_pkey", record)
	require.NotContains(t, record, "notifications_lease_idx", record)
}
