package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// Scheme is the URL scheme of a Twilio account: twilio://SID:SECRET@api.twilio.com?from=….
const Scheme = "twilio"

// Twilio error codes that change how a failure is classified.
const (
	// CodeTooManyRequests is Twilio's 20429: the account is over its concurrency limit.
	CodeTooManyRequests = 20429
	// CodeInvalidNumber is Twilio's 21211: the To number is not a valid phone number.
	CodeInvalidNumber = 21211
	// CodeUnsubscribed is Twilio's 21610: the recipient replied STOP to this sender.
	CodeUnsubscribed = 21610
)

const (
	defaultHost      = "api.twilio.com"
	defaultUserAgent = "Pulse-SMS/1"
)

// Config configures one Twilio account.
type Config struct {
	// AccountSID is the account messages are sent from and billed to ("AC…").
	AccountSID string
	// Username is the HTTP Basic user: the account SID, or an API key SID ("SK…").
	Username string
	// Password is the HTTP Basic password: the account's auth token, or the API key's secret.
	Password string
	// From is the sender: an E.164 number, a short code or an alphanumeric sender ID. Either
	// From or MessagingServiceSID is required.
	From string
	// MessagingServiceSID sends through a Messaging Service ("MG…"), which picks the sender.
	MessagingServiceSID string
	// StatusCallback, when set, is the URL Twilio posts the message's status changes to.
	StatusCallback string
	// BaseURL is the API's base URL; empty means https://api.twilio.com. Tests, `pulse dev`
	// and Twilio-compatible providers set another.
	BaseURL string
}

// ParseURL reads a Twilio account URL:
//
//	twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=%2B15550001111
//	twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?messaging_service_sid=MG…
//	twilio://API_KEY_SID:API_KEY_SECRET@api.twilio.com?account_sid=AC…&from=…
//
// Query parameters: from, messaging_service_sid (one of them required), account_sid
// (required with an API key), status_callback, and base_url, which overrides
// https://HOST as the API base. Its errors never quote the URL or its credentials.
func ParseURL(raw string) (Config, error) {
	u, err := channel.ParseAccountURL(raw, Scheme)
	if err != nil {
		return Config{}, fmt.Errorf("parse twilio account url: %w", err)
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, errors.New("parse twilio account url: the url must have no path")
	}
	var cfg Config
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	host := u.Host
	if host == "" {
		host = defaultHost
	}
	cfg.BaseURL = "https://" + host
	err = channel.ReadAccountParams(u, map[string]*string{
		"from":                  &cfg.From,
		"messaging_service_sid": &cfg.MessagingServiceSID,
		"account_sid":           &cfg.AccountSID,
		"status_callback":       &cfg.StatusCallback,
		"base_url":              &cfg.BaseURL,
	})
	if err != nil {
		return Config{}, fmt.Errorf("parse twilio account url: %w", err)
	}
	if cfg.AccountSID == "" && strings.HasPrefix(cfg.Username, "AC") {
		cfg.AccountSID = cfg.Username
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("parse twilio account url: %w", err)
	}
	return cfg, nil
}

// validate checks cfg; its errors name fields, never their values, except for SIDs, which
// are identifiers rather than secrets.
func (c Config) validate() error {
	switch {
	case c.Username == "" || c.Password == "":
		return errors.New("credentials are required: an account SID and auth token, or an API key SID and secret")
	case !strings.HasPrefix(c.Username, "AC") && !strings.HasPrefix(c.Username, "SK"):
		return errors.New("the user must be an account SID (AC…) or an API key SID (SK…)")
	case c.AccountSID == "":
		return errors.New("account_sid is required with an API key")
	case !strings.HasPrefix(c.AccountSID, "AC") || strings.ContainsAny(c.AccountSID, "/?#% "):
		return errors.New("account_sid must be an account SID (AC…)")
	case c.From == "" && c.MessagingServiceSID == "":
		return errors.New("from or messaging_service_sid is required")
	case c.MessagingServiceSID != "" && !strings.HasPrefix(c.MessagingServiceSID, "MG"):
		return errors.New("messaging_service_sid must be a Messaging Service SID (MG…)")
	}
	if c.StatusCallback != "" && !channel.IsHTTPURL(c.StatusCallback) {
		return errors.New("status_callback must be an absolute http or https URL")
	}
	if c.BaseURL != "" && !channel.IsHTTPURL(c.BaseURL) {
		return errors.New("base_url must be an absolute http or https URL")
	}
	return nil
}

// Provider sends SMS through one Twilio account. It keeps connections alive across sends and
// is safe for concurrent use.
type Provider struct {
	cfg      Config
	endpoint string
	api      *channel.APIClient
}

var _ channel.Provider = (*Provider)(nil)

// New returns a provider for the account cfg describes; opts may set its HTTP client and
// clock. Its errors never quote credentials.
func New(cfg Config, opts ...channel.APIOption) (*Provider, error) {
	if cfg.AccountSID == "" && strings.HasPrefix(cfg.Username, "AC") {
		cfg.AccountSID = cfg.Username
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new twilio provider: %w", err)
	}
	base := cfg.BaseURL
	if base == "" {
		base = "https://" + defaultHost
	}
	return &Provider{
		cfg:      cfg,
		endpoint: strings.TrimRight(base, "/") + "/2010-04-01/Accounts/" + cfg.AccountSID + "/Messages.json",
		api:      channel.NewAPIClient("send sms", "twilio", opts...),
	}, nil
}

// Close releases the provider's idle connections.
func (p *Provider) Close() error {
	p.api.Close()
	return nil
}

// Send posts m to Twilio's Messages API once and classifies the answer. m.To is the
// recipient's number and m.Body the text; the caller's context bounds the request.
func (p *Provider) Send(ctx context.Context, m channel.Message) channel.Result {
	if m.To == "" || m.Body == "" {
		return channel.Result{Outcome: channel.Permanent, Err: errors.New("send sms: the recipient and the body are required")}
	}
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if p.cfg.From != "" {
		form.Set("From", p.cfg.From)
	}
	if p.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", p.cfg.MessagingServiceSID)
	}
	if p.cfg.StatusCallback != "" {
		form.Set("StatusCallback", p.cfg.StatusCallback)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return channel.Result{Outcome: channel.Permanent, Err: errors.New("send sms: build request")}
	}
	req.SetBasicAuth(p.cfg.Username, p.cfg.Password)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	return p.api.Send(req, p.answerResult)
}

// answerResult classifies Twilio's answer.
func (p *Provider) answerResult(ans channel.Answer) channel.Result {
	code := ans.StatusCode
	if code >= 200 && code < 300 {
		var msg struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(ans.Body, &msg)
		return channel.Result{Outcome: channel.Delivered, StatusCode: code, ProviderMessageID: channel.OneLine(msg.SID, 64)}
	}
	res := channel.Result{Outcome: channel.Permanent, StatusCode: code}
	apiErr, _ := parseError(ans.Body)
	if apiErr.Code != 0 {
		res.ErrorCode = strconv.Itoa(apiErr.Code)
	}
	switch {
	case code == http.StatusTooManyRequests, apiErr.Code == CodeTooManyRequests, code >= 500:
		res.Outcome = channel.Transient
		res.RetryAfter = p.api.RetryAfter(ans)
	case apiErr.Code == CodeInvalidNumber, apiErr.Code == CodeUnsubscribed:
		res.Undeliverable = true
	}
	res.Err = p.api.Refusal(ans, describe(apiErr))
	return res
}

// describe says what Twilio's error body adds to the status, in one line: ": error 21211:
// The 'To' number is not a valid phone number. (https://www.twilio.com/docs/errors/21211)".
func describe(e apiError) string {
	s := ""
	if e.Code != 0 {
		s += ": error " + strconv.Itoa(e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.MoreInfo != "" {
		s += " (" + e.MoreInfo + ")"
	}
	return s
}
