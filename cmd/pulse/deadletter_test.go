package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// TestDeadletterCommands sets environment variables, so it cannot run in parallel.
func TestDeadletterCommands(t *testing.T) {
	ctx := context.Background()
	dbURL := pulsetest.DatabaseURL(t)
	redisURL, prefix := pulsetest.Redis(t)
	t.Setenv("PULSE_DATABASE_URL", dbURL)
	t.Setenv("PULSE_REDIS_URL", redisURL)
	t.Setenv("PULSE_REDIS_PREFIX", prefix)
	st, err := store.Open(ctx, config.Database{URL: dbURL, MaxConns: 2})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Migrate(ctx))
	rdb, err := queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	defer rdb.Close()
	keys := queue.NewKeys(prefix)

	acc, err := st.Insert(ctx, []store.NewNotification{{Source: "src", EventID: "e1", MaxAttempts: 3,
		Request: notification.Request{Channel: notification.Webhook, To: "https://hooks.example.com/x", Priority: notification.Low}}})
	require.NoError(t, err)
	id := acc[0].ID
	entry, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.DeadLetter("low"), Values: []string{
		queue.FieldNotificationID, id, queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, "1",
		queue.FieldReason, "delivered 5 times without a 2xx from the sink", queue.FieldOriginalID, "1-1",
		queue.FieldDeliveries, "5", queue.FieldFailedAt, "2026-11-29T06:00:00Z"}}).Result()
	require.NoError(t, err)

	var out bytes.Buffer
	require.NoError(t, deadletterCmd(ctx, []string{"list", "-o", "json"}, &out))
	var listed []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &listed), out.String())
	require.Len(t, listed, 1)
	require.Equal(t, map[string]any{"priority": "low", "id": entry, "original_id": "1-1", "notification_id": id,
		"channel": "webhook", "reason": "delivered 5 times without a 2xx from the sink", "deliveries": float64(5),
		"failed_at": "2026-11-29T06:00:00Z", "status": "queued"}, listed[0])

	out.Reset()
	require.NoError(t, deadletterCmd(ctx, []string{"list"}, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, []string{"PRIORITY", "ENTRY", "NOTIFICATION", "STATUS", "CHANNEL", "DELIVERIES", "FAILED", "AT", "REASON"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"low", entry, id, "queued", "webhook", "5", "2026-11-29T06:00:00Z"}, strings.Fields(lines[1])[:7])

	for name, args := range map[string][]string{
		"neither ids nor --all": {"redrive"},
		"both ids and --all":    {"redrive", "--all", entry},
		"unknown entry":         {"redrive", "1-2"},
		"bad output":            {"list", "-o", "yaml"},
		"unknown subcommand":    {"remove"},
	} {
		require.Error(t, deadletterCmd(ctx, args, &out), name)
	}

	out.Reset()
	require.NoError(t, deadletterCmd(ctx, []string{"redrive", "--all"}, &out))
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Equal(t, []string{"low", entry, id, "queued", "redriven"}, strings.Fields(lines[1]))
	msgs, err := rdb.XRange(ctx, keys.Stream("low"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, id, msgs[0].Values[queue.FieldNotificationID])
	n, err := rdb.XLen(ctx, keys.DeadLetter("low")).Result()
	require.NoError(t, err)
	require.Zero(t, n)
}
