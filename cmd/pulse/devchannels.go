package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/pkg/config"
)

// The dev Twilio account. The capture accepts only these credentials, as Twilio would.
const (
	devTwilioAccount = "AC00000000000000000000000000000dev"
	devTwilioToken   = "pulse-dev-auth-token"
	devTwilioFrom    = "+15550001111"
	devFCMProject    = "pulse-dev"
)

// devCaptures are the SMS and push captures `pulse dev` runs, and the account URLs that point
// the deliver functions at them.
type devCaptures struct {
	sms, push               *capture.Twilio
	fcm                     *capture.FCM
	smsPort, pushPort       int
	smsAccount, pushAccount string
	dir                     string // holds the generated service-account key
}

// newDevCaptures builds the captures for dev's ports, writes a freshly generated
// service-account key to a temporary directory, and sets PULSE_SMS_ACCOUNTS and
// PULSE_PUSH_ACCOUNTS to them unless the environment sets them, so it must run before the
// deliver functions' configuration is loaded. close removes the key.
func newDevCaptures(dev config.Dev) (*devCaptures, error) {
	c := &devCaptures{smsPort: dev.SMSPort, pushPort: dev.PushPort}
	base := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	c.sms = capture.NewTwilio(devTwilioAccount, devTwilioToken, os.Stdout)
	c.smsAccount = "dev=twilio://" + devTwilioAccount + ":" + devTwilioToken + "@127.0.0.1?from=" + url.QueryEscape(devTwilioFrom) +
		"&base_url=" + url.QueryEscape(base(dev.SMSPort))

	key, err := capture.NewServiceAccountKey(devFCMProject, base(dev.PushPort)+"/token")
	if err != nil {
		return nil, err
	}
	c.dir, err = os.MkdirTemp("", "pulse-dev-fcm-")
	if err != nil {
		return nil, fmt.Errorf("write the dev service-account key: %w", err)
	}
	file := filepath.Join(c.dir, "key.json")
	if err := os.WriteFile(file, key.JSON, 0o600); err != nil {
		c.close()
		return nil, fmt.Errorf("write the dev service-account key: %w", err)
	}
	c.fcm = capture.NewFCM(key, os.Stdout)
	c.pushAccount = "dev=fcm://?credentials_file=" + url.QueryEscape(file) + "&api_url=" + url.QueryEscape(base(dev.PushPort))
	if err := config.SetDefaults(map[string]string{"PULSE_SMS_ACCOUNTS": c.smsAccount, "PULSE_PUSH_ACCOUNTS": c.pushAccount}); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// serve runs both captures until ctx ends.
func (c *devCaptures) serve(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return serve(ctx, c.smsPort, c.sms) })
	g.Go(func() error { return serve(ctx, c.pushPort, c.fcm) })
}

// close removes the generated key.
func (c *devCaptures) close() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}
