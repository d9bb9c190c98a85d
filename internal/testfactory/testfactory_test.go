package testfactory_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/notification"
)

func TestNotification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := testfactory.Store(ctx, t, &testfactory.StoreOpts{Now: func() time.Time { return now }})

	type want struct {
		Status   notification.Status
		Channel  notification.Channel
		To       string
		Attempts int
		Finished bool
	}
	tests := map[string]struct {
		opts *testfactory.NotificationOpts
		want want
	}{
		"default":   {want: want{Status: notification.Queued, Channel: notification.Webhook, To: "https://example.com/hook"}},
		"scheduled": {opts: &testfactory.NotificationOpts{Status: notification.Scheduled}, want: want{Status: notification.Scheduled, Channel: notification.Webhook, To: "https://example.com/hook"}},
		"sending email": {opts: &testfactory.NotificationOpts{Status: notification.Sending, Channel: notification.Email},
			want: want{Status: notification.Sending, Channel: notification.Email, To: "someone@example.com", Attempts: 1}},
		"delivered": {opts: &testfactory.NotificationOpts{Status: notification.Delivered}, want: want{Status: notification.Delivered, Channel: notification.Webhook, To: "https://example.com/hook", Attempts: 1, Finished: true}},
		"retrying sms": {opts: &testfactory.NotificationOpts{Status: notification.Retrying, Channel: notification.SMS},
			want: want{Status: notification.Retrying, Channel: notification.SMS, To: "+15555550100", Attempts: 1}},
		"failed push": {opts: &testfactory.NotificationOpts{Status: notification.Failed, Channel: notification.Push, To: "tok"},
			want: want{Status: notification.Failed, Channel: notification.Push, To: "tok", Attempts: 1, Finished: true}},
		"cancelled": {opts: &testfactory.NotificationOpts{Status: notification.Cancelled}, want: want{Status: notification.Cancelled, Channel: notification.Webhook, To: "https://example.com/hook", Finished: true}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := testfactory.Notification(ctx, t, st, tt.opts)
			stored, err := st.Get(ctx, n.ID)
			require.NoError(t, err)
			got := want{Status: stored.Status, Channel: stored.Channel, To: stored.To, Attempts: stored.Attempts, Finished: stored.DeliveredAt != nil || stored.FailedAt != nil || stored.CancelledAt != nil}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stored notification (-want +got):\n%s", diff)
			}
		})
	}
}
