package notification

import (
	"encoding/json"
	"time"
)

// Channel is how a notification reaches its recipient.
type Channel string

// The channels Pulse delivers to.
const (
	Email   Channel = "email"
	SMS     Channel = "sms"
	Push    Channel = "push"
	Webhook Channel = "webhook"
)

// Channels lists every channel.
var Channels = []Channel{Email, SMS, Push, Webhook}

// Priority picks the stream, and so the deliver function, a notification goes through.
type Priority string

// The priorities.
const (
	High Priority = "high"
	Low  Priority = "low"
)

// Priorities lists every priority.
var Priorities = []Priority{High, Low}

// Status is where a notification is in its life.
//
//	scheduled ──▶ queued ──▶ sending ──▶ delivered
//	                 ▲           ├──▶ retrying ──(due)──▶ queued
//	                 │           └──▶ failed
//	queued | scheduled | retrying ──▶ cancelled | expired
type Status string

// The states.
const (
	Scheduled Status = "scheduled"
	Queued    Status = "queued"
	Sending   Status = "sending"
	Retrying  Status = "retrying"
	Delivered Status = "delivered"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
	Expired   Status = "expired"
)

// Statuses lists every state.
var Statuses = []Status{Scheduled, Queued, Sending, Retrying, Delivered, Failed, Cancelled, Expired}

// Terminal reports whether a notification in state s will never change again.
func (s Status) Terminal() bool {
	switch s {
	case Delivered, Failed, Cancelled, Expired:
		return true
	}
	return false
}

// CloudEvent types Pulse receives and answers with.
const (
	TypeRequested = "dev.pulse.notification.requested"
	TypeCancel    = "dev.pulse.notification.cancel"
	TypeAccepted  = "dev.pulse.notification.accepted"
	// TypeDispatch is the type of the event the stream source sends for each stream entry.
	TypeDispatch = "dev.pulse.notification.dispatch"
	// TypeRedisStream is the type of the events Knative's RedisStreamSource sends.
	TypeRedisStream = "dev.knative.sources.redisstream"
)

// Request is the data of a dev.pulse.notification.requested CloudEvent.
type Request struct {
	Channel     Channel           `json:"channel"`
	To          string            `json:"to"`
	Subject     string            `json:"subject,omitempty"`
	Body        string            `json:"body,omitempty"`
	HTML        string            `json:"html,omitempty"`
	Data        json.RawMessage   `json:"data,omitempty"`
	Priority    Priority          `json:"priority,omitempty"`
	SendAt      *time.Time        `json:"send_at,omitempty"`
	ExpiresAt   *time.Time        `json:"expires_at,omitempty"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Notification is one stored notification, as the status API shows it.
type Notification struct {
	ID                string            `json:"id"`
	Source            string            `json:"source"`
	EventID           string            `json:"event_id"`
	Channel           Channel           `json:"channel"`
	Priority          Priority          `json:"priority"`
	Status            Status            `json:"status"`
	To                string            `json:"to"`
	Subject           string            `json:"subject,omitempty"`
	Body              string            `json:"-"`
	HTML              string            `json:"-"`
	Data              json.RawMessage   `json:"-"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	Attempts          int               `json:"attempts"`
	MaxAttempts       int               `json:"max_attempts"`
	SendAt            *time.Time        `json:"send_at,omitempty"`
	ExpiresAt         *time.Time        `json:"expires_at,omitempty"`
	NextAttemptAt     *time.Time        `json:"next_attempt_at,omitempty"`
	LastError         string            `json:"last_error,omitempty"`
	ProviderMessageID string            `json:"provider_message_id,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	QueuedAt          *time.Time        `json:"queued_at,omitempty"`
	SendingAt         *time.Time        `json:"sending_at,omitempty"`
	DeliveredAt       *time.Time        `json:"delivered_at,omitempty"`
	FailedAt          *time.Time        `json:"failed_at,omitempty"`
	CancelledAt       *time.Time        `json:"cancelled_at,omitempty"`
	ExpiredAt         *time.Time        `json:"expired_at,omitempty"`
	UpdatedAt         time.Time         `json:"updated_at"`
}
