package testfactory

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// StoreOpts are the options of Store; the zero value is fine.
type StoreOpts struct {
	// Now is the store's clock; time.Now when nil.
	Now func() time.Time
	// MaxConns bounds the pool; 4 when zero.
	MaxConns int32
}

// Store opens a store on a fresh schema of the test database (pulsetest.DatabaseURL), runs
// the migrations and closes it when the test ends.
func Store(ctx context.Context, t testing.TB, opts *StoreOpts) *store.Store {
	t.Helper()
	if opts == nil {
		opts = &StoreOpts{}
	}
	cfg := config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 4}
	if opts.MaxConns != 0 {
		cfg.MaxConns = opts.MaxConns
	}
	opened, err := store.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(opened.Close)
	st := opened
	if opts.Now != nil {
		st = store.New(opened.Pool(), opts.Now)
	}
	require.NoError(t, st.Migrate(ctx))
	return st
}

// NotificationOpts describe the notification Notification makes; the zero value is a queued
// high-priority webhook.
type NotificationOpts struct {
	// Status is the state to leave it in; queued when empty. Expired is not supported.
	Status notification.Status
	// Channel is webhook when empty; To is a well-formed recipient of the channel when empty.
	Channel notification.Channel
	To      string
	// Priority is high when empty.
	Priority notification.Priority
	// Source and EventID identify the request; "urn:testfactory" and a random id when empty.
	Source  string
	EventID string
	// MaxAttempts is 3 when zero.
	MaxAttempts int
	// Mutate, when set, changes the request before it is stored.
	Mutate func(*notification.Request)
}

// recipients are well-formed recipients of each channel.
var recipients = map[notification.Channel]string{
	notification.Webhook: "https://example.com/hook",
	notification.Email:   "someone@example.com",
	notification.SMS:     "+15555550100",
	notification.Push:    "device-token-0123456789",
}

// Notification stores a notification and moves it to opts.Status the way the pipeline would:
// scheduled an hour after the store's clock, claimed for sending, then recorded as delivered,
// retrying (due a minute later) or failed, or cancelled while queued. It returns the
// notification as stored.
func Notification(ctx context.Context, t testing.TB, st *store.Store, opts *NotificationOpts) notification.Notification {
	t.Helper()
	if opts == nil {
		opts = &NotificationOpts{}
	}
	req := store.NewNotification{Source: opts.Source, EventID: opts.EventID, MaxAttempts: opts.MaxAttempts,
		Request: notification.Request{Channel: opts.Channel, To: opts.To, Priority: opts.Priority}}
	if req.Source == "" {
		req.Source = "urn:testfactory"
	}
	if req.EventID == "" {
		req.EventID = pulsetest.Name("e")
	}
	if req.MaxAttempts == 0 {
		req.MaxAttempts = 3
	}
	if req.Request.Channel == "" {
		req.Request.Channel = notification.Webhook
	}
	if req.Request.To == "" {
		req.Request.To = recipients[req.Request.Channel]
	}
	if req.Request.Priority == "" {
		req.Request.Priority = notification.High
	}
	now := st.Now()
	if opts.Status == notification.Scheduled {
		at := now.Add(time.Hour)
		req.Request.SendAt = &at
	}
	if opts.Mutate != nil {
		opts.Mutate(&req.Request)
	}
	acc, err := st.Insert(ctx, []store.NewNotification{req})
	require.NoError(t, err)
	id := acc[0].ID

	switch opts.Status {
	case "", notification.Queued, notification.Scheduled:
	case notification.Cancelled:
		_, err := st.Cancel(ctx, id)
		require.NoError(t, err)
	case notification.Sending, notification.Delivered, notification.Retrying, notification.Failed:
		claimed, err := st.Claim(ctx, id, time.Minute)
		require.NoError(t, err)
		if opts.Status == notification.Sending {
			break
		}
		a := store.Attempt{NotificationID: id, Attempt: claimed.Attempts, Status: opts.Status, Outcome: "delivered", StartedAt: now}
		switch opts.Status {
		case notification.Retrying:
			next := now.Add(time.Minute)
			a.Outcome, a.NextAttemptAt = "transient", &next
		case notification.Failed:
			a.Outcome = "permanent"
		}
		require.NoError(t, st.Record(ctx, a))
	default:
		t.Fatalf("testfactory: notifications cannot be made %s", opts.Status)
	}
	n, err := st.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, opts.statusOrQueued(), n.Status, "testfactory: notification %s", id)
	return n
}

func (o *NotificationOpts) statusOrQueued() notification.Status {
	if o.Status == "" {
		return notification.Queued
	}
	return o.Status
}

// Get returns the notification id names as st has it, failing the test when it cannot.
func Get(t testing.TB, st *store.Store, id string) notification.Notification {
	t.Helper()
	n, err := st.Get(t.Context(), id)
	require.NoError(t, err)
	return n
}
