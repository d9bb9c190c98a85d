package store

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// TestListFiltersUseIndexes loads a table shaped like a busy deployment's (most rows
// delivered, a few percent failed with errors, fifty sources, four channels), takes real
// statistics, and checks that the planner serves every documented filter of the list, and the
// row pick of replay and cancel, from an index: no sequential scan, whatever the filter.
func TestListFiltersUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := Open(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	s := New(st.Pool(), time.Now)
	require.NoError(t, s.Migrate(ctx))

	var trgm bool
	require.NoError(t, s.pool.QueryRow(ctx, `select exists (select from pg_indexes
		where indexname = 'notifications_last_error_trgm_idx' and schemaname = current_schema())`).Scan(&trgm))
	require.True(t, trgm, "pg_trgm is installed here (Debian's postgresql package ships it): the error index must exist")

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = s.pool.Exec(ctx, `
		insert into notifications (id, source, event_id, channel, priority, status, recipient, max_attempts,
			last_error, created_at, updated_at, finished_at)
		select gen_random_uuid(), 'https://shop-' || (g % 50) || '.example.com/orders', 'e' || g,
			(array['email', 'sms', 'push', 'webhook'])[1 + g % 4], (array['high', 'low'])[1 + g % 2],
			case when g % 20 = 0 then 'failed' when g % 97 = 0 then 'retrying' else 'delivered' end,
			'https://example.com/', 8,
			case when g % 20 = 0 then (array['dial tcp: connection refused', 'HTTP 503 from receiver',
				'550 mailbox unavailable', 'invalid device token'])[1 + g / 20 % 4] || ' #' || g else '' end,
			$1::timestamptz + g * interval '1 second', $1::timestamptz + g * interval '1 second',
			$1::timestamptz + g * interval '1 second'
		from generate_series(1, 100000) g`, base)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `analyze notifications`)
	require.NoError(t, err)

	since, until := base.Add(50000*time.Second), base.Add(60000*time.Second)
	scope := []string{"https://shop-7.example.com/"}
	tests := map[string]struct {
		filter Filter
		after  *Cursor
		// index is the index the documentation says serves the filter.
		index string
	}{
		"no filter":         {Filter{}, nil, "notifications_created_idx"},
		"next page":         {Filter{}, &Cursor{CreatedAt: until, ID: "0190c0de-0000-7000-8000-000000000000"}, "notifications_created_idx"},
		"status":            {Filter{Statuses: []notification.Status{notification.Failed}}, nil, "notifications_status_created_idx"},
		"rare status":       {Filter{Statuses: []notification.Status{notification.Retrying}}, nil, "notifications_status_created_idx"},
		"channel":           {Filter{Channel: notification.SMS}, nil, "notifications_created_idx"},
		"priority":          {Filter{Priority: notification.Low}, nil, "notifications_created_idx"},
		"source":            {Filter{Source: "https://shop-7.example.com/orders"}, nil, "notifications_source_created_idx"},
		"since":             {Filter{Since: since}, nil, "notifications_created_idx"},
		"since and until":   {Filter{Since: since, Until: until}, nil, "notifications_created_idx"},
		"error":             {Filter{Error: "connection refused #1234"}, nil, "notifications_last_error_trgm_idx"},
		"token scope":       {Filter{Prefixes: scope}, nil, "notifications_created_idx"},
		"status and scope":  {Filter{Statuses: []notification.Status{notification.Failed}, Prefixes: scope}, nil, "notifications_status_created_idx"},
		"channel and error": {Filter{Channel: notification.Webhook, Error: "HTTP 503"}, nil, ""},
		// The status page's latest failures.
		"latest failures": {latestFailures, nil, "notifications_status_created_idx"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			query, args, err := listSQL(tt.filter, tt.after, 51)
			require.NoError(t, err)
			plan := explain(t, s, query, args...)
			require.NotContains(t, plan, "Seq Scan", plan)
			if tt.index != "" {
				require.Contains(t, plan, tt.index, plan)
			}
		})
	}

	// What replay and cancel lock and move: their states' rows, through the status index when
	// they are few, else walking created_at and skipping the rest.
	for name, states := range map[string][]notification.Status{"replay": Replayable, "cancel": Cancellable} {
		t.Run(name, func(t *testing.T) {
			where, args, err := Filter{}.where(nil, states)
			require.NoError(t, err)
			plan := explain(t, s, `select id from notifications where `+where+`
				order by created_at desc, id desc limit 1000 for update skip locked`, args...)
			require.NotContains(t, plan, "Seq Scan", plan)
		})
	}
}

func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "explain "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	return regexp.MustCompile(`\(cost=[^)]*\)`).ReplaceAllString(strings.Join(lines, "\n"), "")
}
