package privateserver_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/privateserver"
)

// TestStartPostgresSettings: a server gets the settings asked for, in its configuration file,
// and keeps initdb's defaults for the rest.
func TestStartPostgresSettings(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := privateserver.StartPostgres(ctx, privateserver.PostgresConfig{
		Settings: map[string]string{"work_mem": "8MB", "application_name": "it's pulse"},
		Database: "bench",
	})
	if errors.Is(err, privateserver.ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	conn, err := pgx.Connect(ctx, s.URL())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var db string
	require.NoError(t, conn.QueryRow(ctx, "select current_database()").Scan(&db))
	require.Equal(t, "bench", db)
	for name, want := range map[string]struct{ setting, source string }{
		"work_mem":           {"8192", "configuration file"},
		"application_name":   {"it's pulse", "configuration file"},
		"autovacuum":         {"on", "default"},
		"synchronous_commit": {"on", "default"},
		"fsync":              {"on", "default"},
	} {
		var setting, source string
		require.NoError(t, conn.QueryRow(ctx, "select setting, source from pg_settings where name = $1", name).Scan(&setting, &source))
		require.Equal(t, want, struct{ setting, source string }{setting, source}, name)
	}
}
