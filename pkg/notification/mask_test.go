package notification_test

import (
	"testing"

	"github.com/pulse-knative/pulse/pkg/notification"
)

func TestMaskRecipient(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		channel notification.Channel
		to      string
		want    string
	}{
		"email":               {notification.Email, "alice@example.com", "a***@example.com"},
		"email one letter":    {notification.Email, "a@example.com", "a***@example.com"},
		"email non-ascii":     {notification.Email, "élodie@example.fr", "é***@example.fr"},
		"email without at":    {notification.Email, "alice", "***"},
		"email without local": {notification.Email, "@example.com", "***"},
		"sms":                 {notification.SMS, "+15551231234", "+1555***1234"},
		"sms too short":       {notification.SMS, "+1555123", "***"},
		"sms not ascii":       {notification.SMS, "+1555１２３１２３４", "***"},
		"webhook":             {notification.Webhook, "https://hooks.example.com/T000/B000/s3cr3t?token=abc", "https://hooks.example.com"},
		"webhook port":        {notification.Webhook, "http://10.0.0.1:8080/hook", "http://10.0.0.1:8080"},
		"webhook credentials": {notification.Webhook, "https://user:pass@hooks.example.com/x", "https://hooks.example.com"},
		"webhook not a url":   {notification.Webhook, "hooks.example.com/x", "***"},
		"webhook unparseable": {notification.Webhook, "https://exa mple.com/%zz", "***"},
		"push":                {notification.Push, "dGhpcyBpcyBhIGRldmljZSB0b2tlbg", "dGhpcy***"},
		"push short":          {notification.Push, "short-token", "***"},
		"unknown channel":     {notification.Channel("pigeon"), "alice@example.com", "***"},
		"empty":               {notification.Email, "", "***"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := notification.MaskRecipient(tt.channel, tt.to); got != tt.want {
				t.Errorf("MaskRecipient(%s, %q) = %q, want %q", tt.channel, tt.to, got, tt.want)
			}
		})
	}
}
