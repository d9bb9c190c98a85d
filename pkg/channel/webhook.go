package channel

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WebhookEventType is the "type" of every webhook payload Pulse sends.
const WebhookEventType = "dev.pulse.notification"

const (
	// defaultWebhookTimeout matches the deliver functions' default PULSE_SEND_TIMEOUT.
	defaultWebhookTimeout = 10 * time.Second
	defaultUserAgent      = "Pulse-Webhook/1"
	// maxDrainBytes bounds how much of a response is read. Nothing in it is used; reading a
	// little lets the connection be reused when the answer is short.
	maxDrainBytes = 4 << 10
	// maxRetryAfter caps a receiver's Retry-After, so a hostile or broken receiver cannot
	// park a notification for years.
	maxRetryAfter = 24 * time.Hour
)

// WebhookConfig configures the webhook provider.
type WebhookConfig struct {
	// Secret signs every webhook: "whsec_" followed by a base64 key of at least 24 bytes
	// (Standard Webhooks). Several secrets separated by spaces or commas each sign, and
	// webhook-signature carries one "v1,<sig>" per secret in the order given, so receivers
	// can move to a new secret before the old one is removed.
	Secret string
	// Timeout bounds one request, from dialling to reading the answer; zero means 10s.
	Timeout time.Duration
	// AllowPrivate lets webhooks reach loopback, private, link-local and other non-public
	// addresses, for local runs and tests. Cloud metadata addresses stay refused.
	AllowPrivate bool
	// Now is the clock that stamps webhooks; nil means time.Now.
	Now func() time.Time
	// UserAgent is the User-Agent header; empty means "Pulse-Webhook/1".
	UserAgent string
	// Resolver resolves destination host names; nil means the system's. The guard checks
	// the addresses it returns, at dial time.
	Resolver *net.Resolver
}

// Webhook is the webhook provider: it POSTs a signed JSON payload to the message's URL. It
// keeps connections alive across sends and is safe for concurrent use.
type Webhook struct {
	keys      [][]byte
	timeout   time.Duration
	now       func() time.Time
	userAgent string
	client    *http.Client
	transport *http.Transport
}

// NewWebhook returns a webhook provider. It fails when the secret is malformed; the error
// never quotes the secret.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	keys, err := parseWebhookSecrets(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("new webhook provider: %w", err)
	}
	w := &Webhook{
		keys:      keys,
		timeout:   cfg.Timeout,
		now:       cfg.Now,
		userAgent: cfg.UserAgent,
	}
	if w.timeout <= 0 {
		w.timeout = defaultWebhookTimeout
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.userAgent == "" {
		w.userAgent = defaultUserAgent
	}
	host, err := hostAddrs()
	if err != nil {
		return nil, fmt.Errorf("new webhook provider: %w", err)
	}
	guard := newDestinationGuard(cfg.AllowPrivate, host)
	dialer := &net.Dialer{
		Timeout:   w.timeout,
		KeepAlive: 30 * time.Second,
		Control:   guard.control,
		Resolver:  cfg.Resolver,
	}
	w.transport = &http.Transport{
		// No proxy: the guard checks the address dialled, which through a proxy would be the
		// proxy's, not the destination's.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   w.timeout,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	w.client = &http.Client{
		Transport: w.transport,
		// A redirect would send the signed payload somewhere the requester did not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// CloseIdleConnections closes the keep-alive connections no send is using, for shutdown.
func (w *Webhook) CloseIdleConnections() {
	w.transport.CloseIdleConnections()
}

// webhookPayload is the JSON body of a webhook.
type webhookPayload struct {
	Type      string            `json:"type"`
	ID        string            `json:"id"`
	Timestamp string            `json:"timestamp"`
	Data      json.RawMessage   `json:"data,omitempty"`
	Subject   string            `json:"subject,omitempty"`
	Body      string            `json:"body,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Send POSTs m as a signed webhook to m.To and classifies the answer: 2xx is delivered; 408,
// 425, 429, 5xx, timeouts and network failures are transient, with the receiver's
// Retry-After (capped at 24h); redirects (never followed), other statuses, unusable URLs
// (credentials in them, a port outside 1-65535), unknown hosts and refused destinations
// are permanent. Every attempt carries the same webhook-id, the
// notification id, so receivers can drop repeats.
func (w *Webhook) Send(ctx context.Context, m Message) Result {
	target, err := webhookURL(m.To)
	if err != nil {
		return Result{Outcome: Permanent, Err: err}
	}
	if m.NotificationID == "" || strings.ContainsFunc(m.NotificationID, isControl) {
		return Result{Outcome: Permanent, Err: errors.New("send webhook: the notification id is empty or not a valid header value")}
	}
	sentAt := w.now()
	body, err := webhookBody(m, sentAt)
	if err != nil {
		return Result{Outcome: Permanent, Err: err}
	}

	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Outcome: Permanent, Err: errors.New("send webhook: build request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	req.Header.Set(HeaderWebhookID, m.NotificationID)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(sentAt.Unix(), 10))
	req.Header.Set(HeaderWebhookSignature, webhookSignatures(w.keys, m.NotificationID, sentAt.Unix(), body))

	resp, err := w.client.Do(req)
	if err != nil {
		return w.transportResult(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
	return w.statusResult(resp)
}

// webhookURL parses a webhook destination. Its errors never quote the URL, which may carry
// credentials or tokens.
func webhookURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("parse webhook url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("parse webhook url: the scheme must be http or https")
	}
	if u.Hostname() == "" {
		return nil, errors.New("parse webhook url: the url has no host")
	}
	if u.User != nil {
		// Ingest refuses these; a row stored before it did must not send them either.
		return nil, errors.New("parse webhook url: the url carries credentials (user:password@), which webhooks do not send")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, errors.New("parse webhook url: the port must be between 1 and 65535")
		}
	}
	return u, nil
}

// webhookBody encodes the payload of m sent at sentAt. Its errors never quote the message.
func webhookBody(m Message, sentAt time.Time) ([]byte, error) {
	p := webhookPayload{
		Type:      WebhookEventType,
		ID:        m.NotificationID,
		Timestamp: sentAt.UTC().Format(time.RFC3339),
		Subject:   m.Subject,
		Body:      m.Body,
		Metadata:  m.Metadata,
	}
	if data := bytes.TrimSpace(m.Data); len(data) > 0 && !bytes.Equal(data, []byte("null")) {
		if !json.Valid(data) {
			return nil, errors.New("encode webhook payload: data is not valid JSON")
		}
		p.Data = data
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, errors.New("encode webhook payload: marshal json")
	}
	return body, nil
}

// transportResult classifies a send that got no HTTP answer.
func (w *Webhook) transportResult(err error) Result {
	var dest *destinationError
	if errors.As(err, &dest) {
		return Result{Outcome: Permanent, Err: fmt.Errorf("send webhook: %w", dest)}
	}
	// url.Error quotes the URL, which may carry credentials or tokens: keep only its cause.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Result{Outcome: Transient, Err: fmt.Errorf("send webhook: no answer within %s: %w", w.timeout, err)}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return Result{Outcome: Permanent, Err: fmt.Errorf("send webhook: %w", err)}
	}
	// Refused and reset connections, temporary DNS failures, TLS trouble and a cancelled
	// context may all clear up; the retry schedule bounds how long we keep trying.
	return Result{Outcome: Transient, Err: fmt.Errorf("send webhook: %w", err)}
}

// statusResult classifies an HTTP answer. It never looks at the answer's body.
func (w *Webhook) statusResult(resp *http.Response) Result {
	code := resp.StatusCode
	status := StatusLine(code)
	switch {
	case code >= 200 && code < 300:
		return Result{Outcome: Delivered, StatusCode: code}
	case code >= 300 && code < 400:
		return Result{Outcome: Permanent, StatusCode: code,
			Err: fmt.Errorf("send webhook: receiver answered %s; redirects are not followed", status)}
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests,
		code >= 500 && code < 600:
		return Result{Outcome: Transient, StatusCode: code,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), w.now()),
			Err:        fmt.Errorf("send webhook: receiver answered %s", status)}
	}
	return Result{Outcome: Permanent, StatusCode: code, Err: fmt.Errorf("send webhook: receiver answered %s", status)}
}

// retryAfter reads a Retry-After header, delay-seconds or an HTTP date, as a wait from now.
// It returns 0 for an absent, malformed or past value and caps the wait at maxRetryAfter.
func retryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(value); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f
}
