package store

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"
)

// TestMigrateUpgradesAnInstallation migrates a schema as the previous release left it, with
// notifications in it, to the current version: the rows stay and the storage parameters are
// set.
func TestMigrateUpgradesAnInstallation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := emptyStore(t)

	conn, err := s.pool.Acquire(ctx)
	require.NoError(t, err)
	m, err := migrate.NewMigrator(ctx, conn.Conn(), "pulse_schema_version")
	require.NoError(t, err)
	sub, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(sub))
	require.NoError(t, m.MigrateTo(ctx, 4))
	conn.Release()
	_, err = s.pool.Exec(ctx, `
		insert into notifications (id, source, event_id, channel, priority, status, recipient,
			max_attempts, created_at, updated_at, queued_at)
		select gen_random_uuid(), 'upgrade', 'e' || g, 'webhook', 'high', 'queued', 'https://example.com/',
			8, now(), now(), now()
		from generate_series(1, 100) g`)
	require.NoError(t, err)

	require.NoError(t, s.Migrate(ctx))
	var version, rows int
	var fillfactor string
	require.NoError(t, s.pool.QueryRow(ctx, `select version from pulse_schema_version`).Scan(&version))
	require.Equal(t, len(m.Migrations), version)
	require.NoError(t, s.pool.QueryRow(ctx, `select count(*) from notifications where source = 'upgrade'`).Scan(&rows))
	require.Equal(t, 100, rows)
	require.NoError(t, s.pool.QueryRow(ctx, `
		select o from pg_class c, unnest(c.reloptions) o
		where c.oid = 'notifications'::regclass and o like 'fillfactor=%'`).Scan(&fillfactor))
	require.Equal(t, "fillfactor=90", fillfactor)
}
