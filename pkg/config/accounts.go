package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Account is one provider account of a channel, as configured in PULSE_EMAIL_ACCOUNTS,
// PULSE_SMS_ACCOUNTS or PULSE_PUSH_ACCOUNTS.
type Account struct {
	// Name identifies the account in attempt rows, metrics and logs; it is never secret.
	Name string
	// URL is the account's URL without the rate parameter; it usually carries credentials,
	// so it is never logged or quoted in errors.
	URL *url.URL
	// Rate is the account's own send limit shared by every deliver pod; zero means none.
	Rate Rate
}

// Rate is a send limit: Count sends per Per.
type Rate struct {
	Count int
	Per   time.Duration
}

// IsZero reports whether r sets no limit.
func (r Rate) IsZero() bool { return r.Count == 0 }

// String formats r as it is written: "100/s", "6000/m", "1000/h".
func (r Rate) String() string {
	if r.IsZero() {
		return "none"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return strconv.Itoa(r.Count) + "/" + unit
}

// ParseRate reads "N/s", "N/m" or "N/h" with N a positive integer.
func ParseRate(s string) (Rate, error) {
	count, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per, known := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	n, err := strconv.Atoi(count)
	if !ok || !known || err != nil || n < 1 {
		return Rate{}, errors.New("want N/s, N/m or N/h with N a positive integer")
	}
	return Rate{Count: n, Per: per}, nil
}

// Accounts is a channel's ordered list of provider accounts: the first is tried first, the
// next when one fails transiently, is throttled or has its circuit breaker open.
type Accounts []Account

// accountName is what an account may be called: it appears as a metric label value.
var accountName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Decode parses "name=URL" entries separated by commas or newlines, such as
// "primary=smtp://user:pass@relay.example.com:587?from=a%40example.com&rate=100/s". The
// query parameter rate (N/s, N/m or N/h) is taken out of the URL into Rate; every other part
// of the URL is left to the channel's provider. Errors name the entry by position and name,
// and never quote a URL: URLs carry credentials.
func (a *Accounts) Decode(value string) error {
	var out Accounts
	seen := map[string]bool{}
	for i, entry := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, raw, ok := strings.Cut(entry, "=")
		name, raw = strings.TrimSpace(name), strings.TrimSpace(raw)
		if !ok || !accountName.MatchString(name) {
			return fmt.Errorf("account entry %d: not of the form name=URL with a name of letters, digits, '.', '_' or '-'", i+1)
		}
		if seen[name] {
			return fmt.Errorf("account %s: named twice", name)
		}
		seen[name] = true
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.Opaque != "" {
			return fmt.Errorf("account %s: the URL does not parse or is not of the form scheme://...", name)
		}
		q := u.Query()
		var rate Rate
		if q.Has("rate") {
			if rate, err = ParseRate(q.Get("rate")); err != nil {
				return fmt.Errorf("account %s: rate: %w", name, err)
			}
			q.Del("rate")
			u.RawQuery = q.Encode()
		}
		out = append(out, Account{Name: name, URL: u, Rate: rate})
	}
	*a = out
	return nil
}

// Names lists the accounts' names in order.
func (a Accounts) Names() []string {
	names := make([]string, len(a))
	for i, acc := range a {
		names[i] = acc.Name
	}
	return names
}

// Channels is a list of channel names, comma separated.
type Channels []string

// knownChannels are the channels Pulse delivers.
var knownChannels = []string{"email", "sms", "push", "webhook"}

// Decode parses "email,sms,webhook"; spaces are ignored, unknown channels refused.
func (c *Channels) Decode(value string) error {
	var out Channels
	for _, name := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		known := false
		for _, k := range knownChannels {
			known = known || k == name
		}
		if !known {
			return fmt.Errorf("unknown channel %q: want email, sms, push or webhook", name)
		}
		out = append(out, name)
	}
	*c = out
	return nil
}

// Has reports whether c names channel.
func (c Channels) Has(channel string) bool {
	for _, name := range c {
		if name == channel {
			return true
		}
	}
	return false
}
