package channel

import (
	"context"
	"encoding/json"
	"time"
)

// Message is what a provider sends: one notification's content.
type Message struct {
	// NotificationID is stable across retries; webhooks send it as webhook-id so receivers
	// can drop duplicates.
	NotificationID string
	// Channel is "email", "sms", "push" or "webhook".
	Channel string
	// To is the recipient: an address, phone number, device token or URL.
	To string
	// Subject is the subject line, if the channel has one.
	Subject string
	// Body is the plain-text content.
	Body string
	// HTML is the HTML content of an email.
	HTML string
	// Data is the push or webhook payload object; it may be nil.
	Data json.RawMessage
	// Metadata is the requester's string map, echoed back to it.
	Metadata map[string]string
	// Attempt counts sends of this notification, 1 for the first.
	Attempt int
}

// Outcome is the class of what one send came to; it decides what happens to the notification.
type Outcome string

// Outcomes of a send.
const (
	// Delivered means the provider accepted the message.
	Delivered Outcome = "delivered"
	// Transient means the send may succeed later: retry after backoff.
	Transient Outcome = "transient"
	// Permanent means the send can never succeed: fail now.
	Permanent Outcome = "permanent"
)

// Result is what one send came to.
type Result struct {
	// Outcome classifies the send.
	Outcome Outcome
	// StatusCode is the provider's HTTP status, 0 when there was none.
	StatusCode int
	// ProviderMessageID is the provider's id for the message, if it gave one.
	ProviderMessageID string
	// RetryAfter is the wait the provider asked for in a Retry-After header, 0 when none.
	RetryAfter time.Duration
	// ErrorCode is the provider's own code for a failure (an SMTP enhanced status such as
	// "5.1.1", a Twilio error code such as "21211", an FCM status such as "UNREGISTERED"),
	// empty when it gave none. It is recorded with the attempt.
	ErrorCode string
	// Undeliverable means the provider said the recipient does not exist or has opted out
	// (SMTP 550 5.1.1, Twilio 21211 or 21610, FCM UNREGISTERED): the address is suppressed so
	// later notifications to it fail without another call. It implies Outcome Permanent.
	Undeliverable bool
	// Account names the provider account that handled the send, empty when the channel has a
	// single unnamed provider.
	Account string
	// Err says why the message was not delivered; it never holds secrets or bodies.
	Err error
}

// Provider sends messages of one channel. Implementations are safe for concurrent use.
type Provider interface {
	// Send sends m once and classifies what came of it. It never retries by itself.
	Send(ctx context.Context, m Message) Result
}
