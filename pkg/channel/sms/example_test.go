package sms_test

import (
	"context"
	"fmt"

	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/sms"
)

// An account URL, as PULSE_SMS_ACCOUNTS carries it, becomes a provider that sends one message
// per Send and says what came of it.
func Example() {
	cfg, err := sms.ParseURL("twilio://AC00000000000000000000000000000001:auth-token@api.twilio.com?from=%2B15550001111")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.AccountSID, cfg.From, cfg.BaseURL)

	p, err := sms.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // this example sends nothing
	res := p.Send(ctx, channel.Message{To: "+15551234567", Body: "Your code is 1234"})
	fmt.Println(res.Outcome)
	// Output:
	// AC00000000000000000000000000000001 +15550001111 https://api.twilio.com
	// transient
}
