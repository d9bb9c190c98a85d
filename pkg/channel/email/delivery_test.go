package email_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/email"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// TestDeliverThroughSMTP drives email notifications through the delivery package, from
// claim to recorded outcome, with this package's provider in the deliverer's provider set.
func TestDeliverThroughSMTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testfactory.Store(ctx, t, nil)

	tests := map[string]struct {
		answer      error // at RCPT TO
		wantStatus  notification.Status
		wantOutcome string
		wantError   string
	}{
		"delivered":       {wantStatus: notification.Delivered, wantOutcome: "delivered"},
		"mailbox busy":    {answer: smtpErr(450, smtp.EnhancedCode{4, 2, 1}, "Mailbox busy"), wantStatus: notification.Retrying, wantOutcome: "transient", wantError: "smtp RCPT TO: 450 4.2.1 Mailbox busy"},
		"relay denied":    {answer: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Relay access denied"), wantStatus: notification.Failed, wantOutcome: "permanent", wantError: "smtp RCPT TO: 554 5.7.1 Relay access denied"},
		"no such user":    {answer: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "User unknown"), wantStatus: notification.Failed, wantOutcome: "permanent", wantError: "smtp RCPT TO: 550 5.1.1 User unknown"},
		"dropped in DATA": {answer: capture.ErrDrop, wantStatus: notification.Retrying, wantOutcome: "transient", wantError: "smtp end of DATA: "},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, relayOptions{})
			if tt.answer != nil {
				stage := capture.StageRcpt
				if errors.Is(tt.answer, capture.ErrDrop) {
					stage = capture.StageData
				}
				r.failOnce(stage, tt.answer)
			}
			p := newProvider(t, r.url("smtp", ""))
			d := delivery.NewDeliverer(delivery.DelivererConfig{Store: st,
				Providers: map[notification.Channel]channel.Provider{notification.Email: p},
				Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)), Lease: time.Minute, SendTimeout: 10 * time.Second,
				Retry: config.Retry{Schedule: []time.Duration{time.Minute}}})
			t.Cleanup(d.Close)

			acc, err := st.Insert(ctx, []store.NewNotification{{Source: "urn:test", EventID: pulsetest.Name("e"), MaxAttempts: 3,
				// Each case mails its own recipient: "no such user" suppresses its address.
				Request: notification.Request{Channel: notification.Email, To: strings.ReplaceAll(name, " ", "-") + "@example.org", Subject: "Shipped",
					Body: "Order 1042 is on its way.", HTML: "<p>Order 1042 is on its way.</p>", Priority: notification.High}}})
			require.NoError(t, err)
			id := acc[0].ID
			require.NoError(t, d.Deliver(ctx, id))

			n, err := st.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, n.Status, n.LastError)
			attempts, err := st.Attempts(ctx, id)
			require.NoError(t, err)
			require.Len(t, attempts, 1)
			require.Equal(t, tt.wantOutcome, attempts[0].Outcome)
			require.Contains(t, attempts[0].Error, tt.wantError)
			require.NotContains(t, attempts[0].Error, "1042", "the body never reaches the attempt's error")
			sups, err := st.Suppressions(ctx, "email", n.To, 10)
			require.NoError(t, err)
			if name == "no such user" {
				require.Len(t, sups, 1, "550 5.1.1 suppresses the address")
				require.Equal(t, "5.1.1", sups[0].ErrorCode)
				require.Equal(t, id, sups[0].NotificationID)
			} else {
				require.Empty(t, sups, "only a 5.1.1 suppresses the address")
			}
			if tt.wantStatus != notification.Delivered {
				require.Equal(t, 0, r.Count(id))
				return
			}
			require.Equal(t, "<"+id+"@example.com>", attempts[0].ProviderMessageID)
			require.Equal(t, 1, r.Count(id))
			got := r.Mails()[0]
			require.Equal(t, id, got.Header.Get(email.HeaderNotificationID))
			require.Equal(t, "1", got.Header.Get(email.HeaderAttempt))
			require.Equal(t, "Shipped", got.Header.Get("Subject"))
		})
	}
}
