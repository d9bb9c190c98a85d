package main

import (
	"context"
	"os"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/pkg/config"
)

// devCaptures are the email, SMS and push captures `pulse dev` runs on dev's ports.
type devCaptures struct {
	*capture.Channels
	smtpAddr          string
	smsPort, pushPort int
}

// newDevCaptures builds the captures for dev's ports, with a freshly generated
// service-account key, and sets PULSE_EMAIL_ACCOUNTS, PULSE_SMS_ACCOUNTS and
// PULSE_PUSH_ACCOUNTS to them unless the environment sets them, so it must run before the
// deliver functions' configuration is loaded. close removes the key.
func newDevCaptures(dev config.Dev) (*devCaptures, error) {
	local := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	ch, err := capture.NewChannels(capture.ChannelsConfig{SMTPAddr: local(dev.SMTPPort), SMSAddr: local(dev.SMSPort),
		PushAddr: local(dev.PushPort), Out: os.Stdout})
	if err != nil {
		return nil, err
	}
	c := &devCaptures{Channels: ch, smtpAddr: local(dev.SMTPPort), smsPort: dev.SMSPort, pushPort: dev.PushPort}
	if err := config.SetDefaults(ch.Accounts); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// serve runs the captures until ctx ends.
func (c *devCaptures) serve(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return c.SMTP.ListenAndServe(ctx, c.smtpAddr) })
	g.Go(func() error { return serve(ctx, c.smsPort, c.Twilio) })
	g.Go(func() error { return serve(ctx, c.pushPort, c.FCM) })
}

// close stops the SMTP capture and removes the generated key.
func (c *devCaptures) close() { _ = c.Close() }
