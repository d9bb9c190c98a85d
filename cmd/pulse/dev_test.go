package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/email"
)

// TestDev runs `pulse dev` and sends a webhook through it to its own capture receiver, as the
// README's "Send a notification" does.
func TestDev(t *testing.T) {
	redisURL, prefix := pulsetest.Redis(t)
	t.Setenv("PULSE_DATABASE_URL", pulsetest.DatabaseURL(t))
	t.Setenv("PULSE_REDIS_URL", redisURL)
	t.Setenv("PULSE_REDIS_PREFIX", prefix)
	t.Setenv("PULSE_LOG_LEVEL", "warn")
	ports := map[string]int{}
	for _, name := range []string{"INGEST", "DELIVER_HIGH", "DELIVER_LOW", "CRON", "METRICS", "WEBHOOK", "SMTP", "SMS", "PUSH"} {
		ports[name] = pulsetest.FreePort(t)
		t.Setenv("PULSE_DEV_"+name+"_PORT", strconv.Itoa(ports[name]))
	}
	t.Setenv("PULSE_DEV_MANIFESTS", "../../config")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, "dev", nil) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	ingest := fmt.Sprintf("http://127.0.0.1:%d", ports["INGEST"])
	post := func(eventID, body string) string {
		var id string
		require.Eventually(t, func() bool {
			req, _ := http.NewRequest(http.MethodPost, ingest+"/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Ce-Specversion", "1.0")
			req.Header.Set("Ce-Id", eventID)
			req.Header.Set("Ce-Source", "urn:pulse:dev-test")
			req.Header.Set("Ce-Type", "dev.pulse.notification.requested")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var a struct{ ID string }
			if resp.StatusCode/100 != 2 || json.NewDecoder(resp.Body).Decode(&a) != nil {
				return false
			}
			id = a.ID
			return true
		}, 30*time.Second, 50*time.Millisecond, "ingest never accepted the request")
		return id
	}
	delivered := func(id string) bool {
		resp, err := http.Get(ingest + "/v1/notifications/" + id)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var n struct{ Status string }
		return json.NewDecoder(resp.Body).Decode(&n) == nil && n.Status == "delivered"
	}

	webhook := func(extra string) string {
		return fmt.Sprintf(`{"channel":"webhook","to":"http://127.0.0.1:%d/hook","data":{"hello":"world"}%s}`, ports["WEBHOOK"], extra)
	}
	now := post("dev-1", webhook(""))
	require.Eventually(t, func() bool { return delivered(now) }, 30*time.Second, 50*time.Millisecond, "notification never delivered")

	// The metrics function serves the old exporter's families.
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["METRICS"]))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `pulse_notifications_by_status{status="delivered"} 1`)
	}, 30*time.Second, 100*time.Millisecond, "metrics never showed the delivered notification")
	// So does the status page, whose address `pulse dev` prints.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports["METRICS"]))
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
	require.Contains(t, string(page), "<h1>Pulse status</h1>")

	// A scheduled send goes out through cron, ticked by the PingSources of config/.
	sendAt := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	later := post("dev-2", webhook(`,"send_at":"`+sendAt+`"`))
	require.False(t, delivered(later))
	require.Eventually(t, func() bool { return delivered(later) }, 30*time.Second, 100*time.Millisecond, "scheduled notification never delivered")

	// The email account `pulse dev` gives its deliver functions reaches its capture SMTP server.
	name, accountURL, ok := strings.Cut(os.Getenv("PULSE_EMAIL_ACCOUNTS"), "=")
	require.True(t, ok, "PULSE_EMAIL_ACCOUNTS is name=URL")
	require.Equal(t, "dev", name)
	require.Contains(t, accountURL, "127.0.0.1:"+strconv.Itoa(ports["SMTP"]))
	cfg, err := email.ParseURL(accountURL)
	require.NoError(t, err)
	mailer, err := email.New(cfg)
	require.NoError(t, err)
	defer mailer.Close()
	res := mailer.Send(context.Background(), channel.Message{NotificationID: "dev-mail-1", Channel: "email",
		To: "someone@example.com", Subject: "Hello", Body: "Hi there"})
	require.NoError(t, res.Err)
	require.Equal(t, channel.Delivered, res.Outcome)

	// Email, SMS and push notifications reach the captures: ingest accepts every channel
	// dev has an account for, and the deliver functions send them.
	for i, body := range []string{
		`{"channel":"email","to":"someone@example.com","subject":"Hello","body":"Hi there"}`,
		`{"channel":"sms","to":"+15551234567","body":"Your code is 1234"}`,
		`{"channel":"push","to":"device-token-1","subject":"Hello","body":"From Pulse","data":{"data":{"order":"42"}}}`,
	} {
		id := post(fmt.Sprintf("dev-channel-%d", i), body)
		require.Eventually(t, func() bool { return delivered(id) }, 30*time.Second, 50*time.Millisecond, "%s never delivered", body)
	}
}
