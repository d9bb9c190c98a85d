package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// Scheme is the URL scheme of an FCM account: fcm://?credentials_file=…&project=….
const Scheme = "fcm"

// Scope is the OAuth2 scope FCM's HTTP v1 API asks for.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// FCM error codes that decide how a failure is classified.
const (
	CodeUnregistered    = "UNREGISTERED"
	CodeInvalidArgument = "INVALID_ARGUMENT"
	CodeQuotaExceeded   = "QUOTA_EXCEEDED"
	CodeUnavailable     = "UNAVAILABLE"
	CodeInternal        = "INTERNAL"
)

const (
	defaultAPIURL    = "https://fcm.googleapis.com"
	defaultUserAgent = "Pulse-Push/1"
	// tokenTimeout bounds one access-token request; a send also stops waiting for it when
	// its own context ends.
	tokenTimeout = 30 * time.Second
)

// Config configures one FCM project and the service account that sends to it.
type Config struct {
	// CredentialsFile is the path of the service account's JSON key, mounted from a
	// Kubernetes Secret.
	CredentialsFile string
	// Project is the Firebase project ID; empty means the key's project_id.
	Project string
	// APIURL is the API's base URL; empty means https://fcm.googleapis.com.
	APIURL string
	// TokenURL is the OAuth2 token endpoint; empty means the key's token_uri.
	TokenURL string
}

// ParseURL reads an FCM account URL:
//
//	fcm://?credentials_file=/var/run/secrets/pulse/fcm/key.json&project=my-project
//
// Query parameters: credentials_file (required), project, api_url and token_url (tests and
// `pulse dev`). It reads no file; New does. Its errors never quote the URL.
func ParseURL(raw string) (Config, error) {
	u, err := channel.ParseAccountURL(raw, Scheme)
	if err != nil {
		return Config{}, fmt.Errorf("parse fcm account url: %w", err)
	}
	if u.User != nil || u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return Config{}, errors.New("parse fcm account url: want fcm://?credentials_file=…; the key is read from a file, never from the url")
	}
	var cfg Config
	err = channel.ReadAccountParams(u, map[string]*string{
		"credentials_file": &cfg.CredentialsFile,
		"project":          &cfg.Project,
		"api_url":          &cfg.APIURL,
		"token_url":        &cfg.TokenURL,
	})
	if err != nil {
		return Config{}, fmt.Errorf("parse fcm account url: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("parse fcm account url: %w", err)
	}
	return cfg, nil
}

func (c Config) validate() error {
	switch {
	case c.CredentialsFile == "":
		return errors.New("credentials_file is required")
	case c.Project != "" && !validProject(c.Project):
		return errors.New("project must be a Firebase project ID (letters, digits and hyphens)")
	case c.APIURL != "" && !channel.IsHTTPURL(c.APIURL):
		return errors.New("api_url must be an absolute http or https URL")
	case c.TokenURL != "" && !channel.IsHTTPURL(c.TokenURL):
		return errors.New("token_url must be an absolute http or https URL")
	}
	return nil
}

func validProject(p string) bool {
	if len(p) > 64 {
		return false
	}
	for _, r := range p {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != ':' && r != '.' {
			return false
		}
	}
	return p != ""
}

// Provider sends push messages through one FCM project. Every send shares one cached access
// token and one connection pool; it is safe for concurrent use.
type Provider struct {
	endpoint string
	tokens   oauth2.TokenSource
	api      *channel.APIClient
}

var _ channel.Provider = (*Provider)(nil)

// New reads the service-account key and returns a provider for its project; opts may set its
// HTTP client and clock. It fetches no token yet: the first send does. Its errors never quote
// the key.
func New(cfg Config, opts ...channel.APIOption) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new fcm provider: %w", err)
	}
	key, err := os.ReadFile(cfg.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("new fcm provider: read credentials file: %w", err)
	}
	var keyInfo struct {
		Type      string `json:"type"`
		ProjectID string `json:"project_id"`
	}
	if err := json.Unmarshal(key, &keyInfo); err != nil || keyInfo.Type != "service_account" {
		return nil, errors.New("new fcm provider: the credentials file is not a service-account JSON key")
	}
	jwtCfg, err := google.JWTConfigFromJSON(key, Scope)
	if err != nil || jwtCfg.Email == "" || len(jwtCfg.PrivateKey) == 0 {
		return nil, errors.New("new fcm provider: the service-account key lacks client_email or private_key")
	}
	if cfg.TokenURL != "" {
		jwtCfg.TokenURL = cfg.TokenURL
	}
	project := cfg.Project
	if project == "" {
		project = keyInfo.ProjectID
	}
	if !validProject(project) {
		return nil, errors.New("new fcm provider: no project: set project, or use a key with a project_id")
	}
	api := cfg.APIURL
	if api == "" {
		api = defaultAPIURL
	}
	p := &Provider{
		endpoint: strings.TrimRight(api, "/") + "/v1/projects/" + project + "/messages:send",
		api:      channel.NewAPIClient("send push", "fcm", opts...),
	}
	// The token source outlives any one send, so it cannot take a send's context; the
	// token client's timeout bounds it, and Send stops waiting when its own context ends.
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, p.api.SideClient(tokenTimeout))
	// jwt.Config.TokenSource is an oauth2.ReuseTokenSource: one token per pod, fetched again
	// only when it is about to expire.
	p.tokens = jwtCfg.TokenSource(tokenCtx)
	return p, nil
}

// Close releases the provider's idle connections.
func (p *Provider) Close() error {
	p.api.Close()
	return nil
}

// message is FCM's Message resource, as much of it as Pulse sets.
type message struct {
	Token        string             `json:"token"`
	Notification *notificationBlock `json:"notification,omitempty"`
	Data         map[string]string  `json:"data,omitempty"`
	Android      json.RawMessage    `json:"android,omitempty"`
	APNS         json.RawMessage    `json:"apns,omitempty"`
	Webpush      json.RawMessage    `json:"webpush,omitempty"`
}

type notificationBlock struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// Send posts m to FCM once and classifies the answer. m.To is the device registration
// token, m.Subject the title, m.Body the body and m.Data a notification.PushData object.
func (p *Provider) Send(ctx context.Context, m channel.Message) channel.Result {
	body, err := encode(m)
	if err != nil {
		return channel.Result{Outcome: channel.Permanent, Err: err}
	}
	token, err := p.token(ctx)
	if err != nil {
		return channel.Result{Outcome: channel.Transient, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return channel.Result{Outcome: channel.Permanent, Err: errors.New("send push: build request")}
	}
	token.SetAuthHeader(req)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", defaultUserAgent)
	return p.api.Send(req, p.answerResult)
}

// encode builds the request body for m. Its errors name the bad part, never its content.
func encode(m channel.Message) ([]byte, error) {
	if m.To == "" {
		return nil, errors.New("send push: the device token is required")
	}
	data, errs := notification.ParsePushData(m.Data)
	if errs != nil {
		return nil, fmt.Errorf("send push: %w", errs.ViaField("data"))
	}
	msg := message{Token: m.To, Data: data.Data, Android: data.Android, APNS: data.APNS, Webpush: data.Webpush}
	if m.Subject != "" || m.Body != "" {
		msg.Notification = &notificationBlock{Title: m.Subject, Body: m.Body}
	}
	body, err := json.Marshal(struct {
		Message message `json:"message"`
	}{msg})
	if err != nil {
		return nil, errors.New("send push: encode the message")
	}
	return body, nil
}

// token returns the cached access token, fetching one when there is none or it is about to
// expire, and stops waiting when ctx ends.
func (p *Provider) token(ctx context.Context) (*oauth2.Token, error) {
	type result struct {
		token *oauth2.Token
		err   error
	}
	done := make(chan result, 1)
	go func() {
		t, err := p.tokens.Token()
		done <- result{t, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("send push: fetch access token: %w", tokenError(r.err))
		}
		return r.token, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("send push: fetch access token: %w", ctx.Err())
	}
}

// tokenError says why a token request failed without the token endpoint's full answer.
func tokenError(err error) error {
	var rerr *oauth2.RetrieveError
	if errors.As(err, &rerr) && rerr.Response != nil {
		msg := "token endpoint answered " + rerr.Response.Status
		code := rerr.ErrorCode
		if code == "" {
			// The JWT flow leaves the RFC 6749 error code in the body.
			var body struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(rerr.Body, &body)
			code = body.Error
		}
		if code = codeLike(code); code != "" {
			msg += ": " + code
		}
		return errors.New(msg)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return errors.New("the service-account key could not sign a token request")
}

// codeLike keeps an OAuth2 error code such as invalid_grant, else "".
func codeLike(s string) string {
	if len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return ""
		}
	}
	return s
}

// answerResult classifies FCM's answer.
func (p *Provider) answerResult(ans channel.Answer) channel.Result {
	code := ans.StatusCode
	if code >= 200 && code < 300 {
		var sent struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(ans.Body, &sent)
		return channel.Result{Outcome: channel.Delivered, StatusCode: code, ProviderMessageID: channel.OneLine(sent.Name, 256)}
	}
	apiErr, _ := parseError(ans.Body)
	res := channel.Result{Outcome: channel.Permanent, StatusCode: code, ErrorCode: apiErr.Code()}
	switch apiErr.Code() {
	case CodeUnregistered:
		res.Undeliverable = true
	case CodeInvalidArgument:
	case CodeQuotaExceeded, CodeUnavailable, CodeInternal:
		res.Outcome = channel.Transient
	default:
		if code == http.StatusTooManyRequests || code >= 500 {
			res.Outcome = channel.Transient
		}
	}
	if res.Outcome == channel.Transient {
		res.RetryAfter = p.api.RetryAfter(ans)
	}
	res.Err = p.api.Refusal(ans, describe(apiErr))
	return res
}

// describe says what FCM's error body adds to the status, in one line: ": UNREGISTERED:
// Requested entity was not found.".
func describe(e apiError) string {
	s := ""
	if c := e.Code(); c != "" {
		s += ": " + c
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
