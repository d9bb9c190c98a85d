package channel

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxAnswerBytes bounds how much of a provider API's answer is read; Twilio's and FCM's are a
// few kilobytes.
const maxAnswerBytes = 64 << 10

// ParseAccountURL parses raw, the URL of a provider account such as twilio://… or fcm://…,
// and checks its scheme. Its errors never quote the URL: url.Parse's errors quote it, and
// some of their causes quote parts of it, credentials included.
func ParseAccountURL(raw, scheme string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != scheme {
		return nil, fmt.Errorf("the scheme must be %s", scheme)
	}
	return u, nil
}

// ReadAccountParams sets each query parameter of an account URL into the field params names
// for it. Every parameter must be one params knows, given once, so a typo does not silently
// fall back to a default. Its errors name parameters, never their values.
func ReadAccountParams(u *url.URL, params map[string]*string) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("the query is not valid")
	}
	for name, values := range q {
		field, ok := params[name]
		switch {
		case len(values) != 1:
			return fmt.Errorf("parameter %s is given %d times", name, len(values))
		case !ok:
			return fmt.Errorf("unknown parameter %q", name)
		}
		*field = values[0]
	}
	return nil
}

// APIOption changes how a provider of an HTTP API (SMS, push) is built.
type APIOption func(*APIClient)

// WithHTTPClient makes the provider send, and fetch any access tokens, through client instead
// of its own pooled one.
func WithHTTPClient(client *http.Client) APIOption {
	return func(c *APIClient) { c.http, c.custom = client, true }
}

// WithClock sets the clock a Retry-After date is measured against; the default is time.Now.
func WithClock(now func() time.Time) APIOption {
	return func(c *APIClient) { c.now = now }
}

// APIClient is the HTTP side of a provider of an HTTP API such as Twilio's or FCM's: one
// pooled client that never follows redirects (a redirect would carry the account's
// credentials somewhere its URL did not name), bounded answers, and the wording of failures.
// It is safe for concurrent use.
type APIClient struct {
	op     string // what a failure says was being done: "send sms"
	peer   string // who answered: "twilio"
	http   *http.Client
	custom bool // http came from WithHTTPClient
	now    func() time.Time
}

// NewAPIClient returns the client a provider sends through. op says what its failures were
// doing ("send sms") and peer who answered them ("twilio").
func NewAPIClient(op, peer string, opts ...APIOption) *APIClient {
	c := &APIClient{op: op, peer: peer, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = 64
		c.http = &http.Client{Transport: transport, CheckRedirect: noRedirect}
	}
	return c
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// SideClient returns the client for a request made beside the sends, such as fetching an
// access token: the one WithHTTPClient gave, as it is, or else one that shares the pool and
// gives up after timeout.
func (c *APIClient) SideClient(timeout time.Duration) *http.Client {
	if c.custom {
		return c.http
	}
	return &http.Client{Transport: c.http.Transport, CheckRedirect: noRedirect, Timeout: timeout}
}

// Close releases the client's idle connections.
func (c *APIClient) Close() {
	c.http.CloseIdleConnections()
}

// Answer is a provider API's answer to one request.
type Answer struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header is the answer's header.
	Header http.Header
	// Body is the answer's body, its first 64 KiB at most.
	Body []byte
}

// Exchange sends req and reads its answer. Its error, when there is no answer or an error
// answer cannot be read, says so under the client's op and never quotes the URL; such a
// failure is transient, since the next attempt, or the next account, may get through. The
// Answer then carries the status, if one came.
func (c *APIClient) Exchange(req *http.Request) (Answer, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return Answer{}, fmt.Errorf("%s: %w", c.op, err)
	}
	defer resp.Body.Close()
	ans := Answer{StatusCode: resp.StatusCode, Header: resp.Header}
	ans.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil && resp.StatusCode/100 != 2 {
		return Answer{StatusCode: resp.StatusCode}, fmt.Errorf("%s: read %s's answer: %w", c.op, c.peer, err)
	}
	return ans, nil
}

// Send sends req and classifies its answer with classify. A request that got no answer, or
// an error answer that could not be read, is transient.
func (c *APIClient) Send(req *http.Request, classify func(Answer) Result) Result {
	ans, err := c.Exchange(req)
	if err != nil {
		return Result{Outcome: Transient, StatusCode: ans.StatusCode, Err: err}
	}
	return classify(ans)
}

// RetryAfter is the wait the answer's Retry-After header asks for, by the client's clock.
func (c *APIClient) RetryAfter(a Answer) time.Duration {
	return ParseRetryAfter(a.Header.Get("Retry-After"), c.now())
}

// Refusal is the error of an answer that did not deliver: "send sms: twilio answered 400
// Bad Request" followed by detail, the peer's own account of it.
func (c *APIClient) Refusal(a Answer, detail string) error {
	return fmt.Errorf("%s: %s answered %s%s", c.op, c.peer, StatusLine(a.StatusCode), detail)
}
