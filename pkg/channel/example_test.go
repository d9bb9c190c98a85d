package channel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// A capture receiver, like the one `pulse dev` runs, checks each webhook's signature before
// trusting it.
func ExampleVerifyWebhook() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := channel.VerifyWebhook(secret, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	// AllowPrivate because the receiver listens on loopback.
	webhook, err := channel.NewWebhook(channel.WebhookConfig{Secret: secret, Timeout: 5 * time.Second, AllowPrivate: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer webhook.CloseIdleConnections()
	res := webhook.Send(context.Background(), channel.Message{
		NotificationID: "ntf_123",
		Channel:        "webhook",
		To:             srv.URL,
		Data:           []byte(`{"order":42}`),
		Attempt:        1,
	})
	fmt.Println(res.Outcome, res.StatusCode)
	// Output:
	// verified ntf_123
	// delivered 204
}

// Without AllowPrivate, a webhook aimed at a loopback, private or metadata address is refused
// before any connection is made.
func ExampleWebhook_Send_refused() {
	webhook, err := channel.NewWebhook(channel.WebhookConfig{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if err != nil {
		fmt.Println(err)
		return
	}
	res := webhook.Send(context.Background(), channel.Message{NotificationID: "ntf_124", To: "http://127.0.0.1:9/hook"})
	fmt.Println(res.Outcome)
	fmt.Println(res.Err)
	// Output:
	// permanent
	// send webhook: webhook destination 127.0.0.1 is a loopback address; set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations
}
