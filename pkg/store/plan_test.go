package store

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// TestClaimFindsRowsByPrimaryKey checks byKeyOnly: with statistics taken while no row was
// queued or sending, and a backlog of queued and sending rows since, the claim and record
// statements still find their rows by primary key instead of scanning the backlog's partial
// index. The same claim written with a literal state reads the partial index, which is what
// the test guards against.
func TestClaimFindsRowsByPrimaryKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := planStore(t)

	_, err := s.pool.Exec(ctx, `
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
	claim := explain(t, s, claimSQL, ids, now, now.Add(time.Minute))
	require.Contains(t, claim, "notifications_pkey", claim)
	require.NotContains(t, claim, "notifications_queued_idx", claim)
	require.NotContains(t, claim, "notifications_status_created_idx", claim)

	literal := explain(t, s, strings.Replace(claimSQL, "status = (select 'queued')", "status = 'queued'", 1), ids, now, now.Add(time.Minute))
	// The backlog is read through the state's partial index or the list's (status, created_at,
	// id) index (migrations/003_list.sql), whichever the planner costs lower.
	require.Regexp(t, `notifications_(queued|status_created)_idx`, literal, "the hazard byKeyOnly avoids is gone; the test no longer proves anything:\n%s", literal)

	n := len(ids)
	texts := make([]string, n)
	ints := make([]int32, n)
	times := make([]time.Time, n)
	record := explain(t, s, recordSQL, ids, ints, texts, make([]pgtype.Timestamptz, n), texts, texts, texts, ints,
		times, make([]float64, n), now, texts, texts, make([]bool, n))
	require.Contains(t, record, "notifications_pkey", record)
	require.NotContains(t, record, "notifications_lease_idx", record)
}

// TestListFiltersUseIndexes loads a table shaped like a busy deployment's (most rows
// delivered, a few percent failed with errors, fifty sources, four channels), takes real
// statistics, and checks that the planner serves every documented filter of the list, and the
// row pick of replay and cancel, from an index: no sequential scan, whatever the filter.
func TestListFiltersUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := planStore(t)

	var trgm bool
	require.NoError(t, s.pool.QueryRow(ctx, `select exists (select from pg_indexes
		where indexname = 'notifications_last_error_trgm_idx' and schemaname = current_schema())`).Scan(&trgm))
	require.True(t, trgm, "pg_trgm is installed here (Debian's postgresql package ships it): the error index must exist")

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := s.pool.Exec(ctx, `
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

// planStore opens a store on a fresh schema of the test database and runs the migrations, for
// the tests that read the planner's choices.
func planStore(t *testing.T) *Store {
	t.Helper()
	s := emptyStore(t)
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

// emptyStore opens a store on a fresh schema of the test database, without migrating it.
func emptyStore(t *testing.T) *Store {
	t.Helper()
	opened, err := Open(context.Background(), config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(opened.Close)
	return opened
}

// explain returns the plan PostgreSQL chooses for query, in text, without its cost estimates.
func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "explain (format text) "+query, args...)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return regexp.MustCompile(`\(cost=[^)]*\)`).ReplaceAllString(strings.Join(lines, "\n"), "")
}
