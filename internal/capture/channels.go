package capture

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
)

// The captures' Twilio account and FCM project. The SMS capture accepts only these
// credentials, as Twilio would.
const (
	TwilioAccountSID = "AC00000000000000000000000000000dev"
	TwilioAuthToken  = "pulse-dev-auth-token"
	TwilioFrom       = "+15550001111"
	FCMProject       = "pulse-dev"
	// EmailFrom is the sender of the email delivered to the SMTP capture.
	EmailFrom = "Pulse dev <pulse@pulse.localhost>"
	// AccountName names the provider account of each channel that points at a capture.
	AccountName = "dev"
)

// ChannelsConfig says where the email, SMS and push captures listen.
type ChannelsConfig struct {
	// SMTPAddr, SMSAddr and PushAddr are the host:port each capture is served on.
	SMTPAddr, SMSAddr, PushAddr string
	// Out, when not nil, gets one line per message any of them receives.
	Out io.Writer
}

// Channels are the email, SMS and push captures together, with the provider accounts that
// point Pulse's deliver functions at them: what `pulse dev` and the end-to-end tests run.
// The captures are not served yet: serve SMTP with its Serve or ListenAndServe, and Twilio
// and FCM as HTTP handlers, on the configured addresses.
type Channels struct {
	SMTP   *SMTP
	Twilio *Twilio
	FCM    *FCM
	// Accounts are the values of PULSE_EMAIL_ACCOUNTS, PULSE_SMS_ACCOUNTS and
	// PULSE_PUSH_ACCOUNTS that send to the captures, keyed by variable name. Email goes
	// unencrypted and without AUTH: the capture is on this machine.
	Accounts map[string]string
	// KeyFile is the generated service-account key the push account reads.
	KeyFile string
	dir     string
}

// NewChannels builds the captures and writes a freshly generated service-account key, which
// the FCM capture trusts, to a temporary directory. Close removes it.
func NewChannels(cfg ChannelsConfig) (*Channels, error) {
	pushBase := "http://" + cfg.PushAddr
	key, err := NewServiceAccountKey(FCMProject, pushBase+"/token")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pulse-capture-fcm-")
	if err != nil {
		return nil, fmt.Errorf("write the capture's service-account key: %w", err)
	}
	c := &Channels{dir: dir, KeyFile: filepath.Join(dir, "key.json")}
	if err := os.WriteFile(c.KeyFile, key.JSON, 0o600); err != nil {
		c.Close()
		return nil, fmt.Errorf("write the capture's service-account key: %w", err)
	}
	c.SMTP = NewSMTP(SMTPConfig{Out: cfg.Out})
	c.Twilio = NewTwilio(TwilioAccountSID, TwilioAuthToken, cfg.Out)
	c.FCM = NewFCM(key, cfg.Out)
	c.Accounts = map[string]string{
		"PULSE_EMAIL_ACCOUNTS": AccountName + "=smtp://" + cfg.SMTPAddr + "?from=" + url.QueryEscape(EmailFrom) + "&tls=none",
		"PULSE_SMS_ACCOUNTS": AccountName + "=twilio://" + TwilioAccountSID + ":" + TwilioAuthToken + "@127.0.0.1?from=" +
			url.QueryEscape(TwilioFrom) + "&base_url=" + url.QueryEscape("http://"+cfg.SMSAddr),
		"PULSE_PUSH_ACCOUNTS": AccountName + "=fcm://?credentials_file=" + url.QueryEscape(c.KeyFile) + "&api_url=" + url.QueryEscape(pushBase),
	}
	return c, nil
}

// Close stops the SMTP capture and removes the generated key.
func (c *Channels) Close() error {
	var err error
	if c.SMTP != nil {
		err = c.SMTP.Close()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
	return err
}
