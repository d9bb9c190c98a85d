package email_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/email"
)

// An account URL becomes a Provider; here it points at a capture server on this machine, as
// `pulse dev` does.
func ExampleNew() {
	relay := capture.NewSMTP(capture.SMTPConfig{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = relay.Serve(l) }()
	defer relay.Close()

	cfg, err := email.ParseURL("smtp://" + l.Addr().String() + "?from=Shop%20%3Cshop%40example.com%3E&tls=none")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := email.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := p.Send(ctx, channel.Message{NotificationID: "019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55", Channel: "email",
		To: "bob@example.org", Subject: "Your order has shipped", Body: "It is on its way.", Attempt: 1})
	fmt.Println(res.Outcome, res.ProviderMessageID)
	m := relay.Mails()[0]
	fmt.Println(m.Header.Get("From"), "->", m.To[0], m.Header.Get(email.HeaderNotificationID))
	// Output:
	// delivered <019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55@example.com>
	// "Shop" <shop@example.com> -> bob@example.org 019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55
}
