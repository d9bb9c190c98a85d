package pulsetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// goneOwner returns the owner part of a name created by a process that has exited.
func goneOwner(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return fmt.Sprintf("%s_%d_%d", host, cmd.Process.Pid, time.Now().Unix())
}

// leftoverNames are names of finished and running runs, by what the sweep must do with them.
func leftoverNames(t *testing.T, prefix string) map[string]string {
	t.Helper()
	return map[string]string{
		"process gone":           Name(prefix + goneOwner(t) + "_"),
		"older than an hour":     Name(prefix + fmt.Sprintf("%s_%d_%d", host, os.Getpid(), started.Add(-2*time.Hour).Unix()) + "_"),
		"other host, old":        Name(prefix + fmt.Sprintf("%s_%d_%d", "00000000", os.Getpid(), started.Add(-2*time.Hour).Unix()) + "_"),
		"running":                ownedName(prefix),
		"other host, recent":     Name(prefix + fmt.Sprintf("%s_%d_%d", "00000000", 1, time.Now().Unix()) + "_"),
		"not a run's name (old)": Name(prefix),
	}
}

// wantKept is what the sweep must keep of leftoverNames.
var wantKept = map[string]bool{
	"process gone": false, "older than an hour": false, "other host, old": false,
	"running": true, "other host, recent": true, "not a run's name (old)": true,
}

func TestDropLeftoverSchemas(t *testing.T) {
	t.Parallel()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		skipOrFail(t, "TEST_DATABASE_URL is not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })

	names := leftoverNames(t, schemaPrefix)
	for _, name := range names {
		_, err := conn.Exec(ctx, "CREATE SCHEMA "+name)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+name) })
	}
	dropLeftoverSchemas(ctx, conn, time.Now())

	kept := map[string]bool{}
	for what, name := range names {
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name).Scan(&n))
		kept[what] = n == 1
	}
	if diff := cmp.Diff(wantKept, kept); diff != "" {
		t.Errorf("schemas kept (-want +got):\n%s", diff)
	}
}

func TestDeleteLeftoverKeys(t *testing.T) {
	t.Parallel()
	redisURL := os.Getenv("TEST_REDIS_URL")
	if redisURL == "" {
		skipOrFail(t, "TEST_REDIS_URL is not set")
	}
	opts, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()

	names := leftoverNames(t, keyPrefix)
	for _, name := range names {
		key := "{" + name + "}:stream:high"
		require.NoError(t, client.Set(ctx, key, "1", 0).Err())
		t.Cleanup(func() { client.Del(context.Background(), key) })
	}
	deleteLeftoverKeys(ctx, client, time.Now())

	kept := map[string]bool{}
	for what, name := range names {
		n, err := client.Exists(ctx, "{"+name+"}:stream:high").Result()
		require.NoError(t, err)
		kept[what] = n == 1
	}
	if diff := cmp.Diff(wantKept, kept); diff != "" {
		t.Errorf("keys kept (-want +got):\n%s", diff)
	}
}
