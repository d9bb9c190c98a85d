package email

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TLSMode says how a connection to the relay is encrypted.
type TLSMode string

// TLS modes.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS and refuses a relay that does not
	// offer it. The default for smtp:// URLs.
	TLSStartTLS TLSMode = "starttls"
	// TLSOpportunistic uses STARTTLS when the relay offers it and sends in the clear when not.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSNone never encrypts; credentials are then only sent to a relay on localhost.
	TLSNone TLSMode = "none"
	// TLSImplicit speaks TLS from the first byte (smtps://, port 465).
	TLSImplicit TLSMode = "implicit"
)

// Auth mechanisms that may be asked for; empty means the strongest the relay offers.
const (
	AuthPlain   = "PLAIN"
	AuthLogin   = "LOGIN"
	AuthCRAMMD5 = "CRAM-MD5"
)

// Defaults of an account.
const (
	// DefaultPoolSize is how many connections one Provider keeps open at most.
	DefaultPoolSize = 4
	// DefaultIdleTimeout is how long a connection may sit unused before it is closed rather
	// than reused: relays drop idle sessions, and a fresh one costs less than a failed send.
	DefaultIdleTimeout = 30 * time.Second
	// maxPoolSize bounds pool= so a typo cannot open thousands of sessions against a relay.
	maxPoolSize = 100
)

// Config is one SMTP account.
type Config struct {
	// Host is the relay's host name; it is also the name its TLS certificate is checked for.
	Host string
	// Port is the relay's port: 587 for smtp:// and 465 for smtps:// unless the URL says.
	Port int
	// TLS says how the connection is encrypted.
	TLS TLSMode
	// Username and Password authenticate with SMTP AUTH; no username means no AUTH.
	Username, Password string
	// Auth is the AUTH mechanism (AuthPlain, AuthLogin, AuthCRAMMD5); empty means the first
	// of SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN, CRAM-MD5 that the relay offers.
	Auth string
	// From is the sender: the From header and the envelope sender.
	From mail.Address
	// ReplyTo is the Reply-To header; nil means none.
	ReplyTo *mail.Address
	// PoolSize is how many connections are kept open at most; 0 means DefaultPoolSize.
	PoolSize int
	// IdleTimeout closes a connection unused for this long; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// InsecureSkipVerify accepts any certificate. For tests and local relays only.
	InsecureSkipVerify bool
	// CAFile is a PEM file of roots that the relay's certificate is checked against instead
	// of the system's (a private relay).
	CAFile string
}

// String describes the account without its password, so a Config that reaches a log or an
// error gives nothing away.
func (c Config) String() string {
	user := ""
	if c.Username != "" {
		user = c.Username + ":REDACTED@"
	}
	return fmt.Sprintf("smtp account %s%s (tls %s, from %s)", user, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.TLS, c.From.Address)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue is String, for log/slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ErrInvalidURL is the error of every account URL ParseURL refuses; the message says which
// part is wrong and never quotes the URL or its password.
var ErrInvalidURL = errors.New("invalid email account URL")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL reads an account URL:
//
//	smtp://user:pass@relay.example.com:587?from=alerts%40example.com&tls=starttls
//	smtps://user:pass@relay.example.com:465?from=Shop%20%3Cshop%40example.com%3E
//
// Query parameters: from (required; an address, or "Name <address>"), reply_to, tls
// (starttls, the default, opportunistic or none; smtp:// only), auth (plain, login or
// cram-md5), pool (connections, 1 to 100, default 4), idle (a duration, default 30s),
// insecure_skip_verify (true for tests only) and ca_file (PEM roots). Unknown parameters are
// refused, so a typo does not silently fall back to a default. User and password must be
// URL-encoded.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the URL, and so possibly the password, in its errors.
		return Config{}, invalid("not a URL (check the scheme and that user and password are URL-encoded)")
	}
	var cfg Config
	switch u.Scheme {
	case "smtp":
		cfg.Port, cfg.TLS = 587, TLSStartTLS
	case "smtps":
		cfg.Port, cfg.TLS = 465, TLSImplicit
	default:
		return Config{}, invalid("scheme must be smtp or smtps")
	}
	if u.Opaque != "" || u.Host == "" {
		return Config{}, invalid("no host (want smtp://USER:PASSWORD@HOST:PORT?from=ADDRESS)")
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, invalid("a path is not allowed")
	}
	if u.Fragment != "" {
		return Config{}, invalid("a fragment is not allowed")
	}
	cfg.Host = u.Hostname()
	if cfg.Host == "" {
		return Config{}, invalid("no host")
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return Config{}, invalid("port must be 1 to 65535")
		}
		cfg.Port = port
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username == "" {
			return Config{}, invalid("empty user name")
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, invalid("query is not URL-encoded")
	}
	for name, values := range q {
		if len(values) != 1 {
			return Config{}, invalid("parameter %s given %d times", name, len(values))
		}
		v := values[0]
		switch name {
		case "from":
			a, err := mail.ParseAddress(v)
			if err != nil {
				return Config{}, invalid("from: not an email address (URL-encode it: Shop%%20%%3Cshop%%40example.com%%3E)")
			}
			cfg.From = *a
		case "reply_to":
			a, err := mail.ParseAddress(v)
			if err != nil {
				return Config{}, invalid("reply_to: not an email address")
			}
			cfg.ReplyTo = a
		case "tls":
			if cfg.TLS == TLSImplicit {
				return Config{}, invalid("tls: smtps always uses implicit TLS; use smtp:// for STARTTLS")
			}
			switch m := TLSMode(strings.ToLower(v)); m {
			case TLSStartTLS, TLSOpportunistic, TLSNone:
				cfg.TLS = m
			default:
				return Config{}, invalid("tls: want starttls, opportunistic or none")
			}
		case "auth":
			switch a := strings.ToUpper(v); a {
			case AuthPlain, AuthLogin, AuthCRAMMD5:
				cfg.Auth = a
			default:
				return Config{}, invalid("auth: want plain, login or cram-md5")
			}
		case "pool":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPoolSize {
				return Config{}, invalid("pool: want a number of connections from 1 to %d", maxPoolSize)
			}
			cfg.PoolSize = n
		case "idle":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Config{}, invalid("idle: want a positive duration such as 30s")
			}
			cfg.IdleTimeout = d
		case "insecure_skip_verify":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, invalid("insecure_skip_verify: want true or false")
			}
			cfg.InsecureSkipVerify = b
		case "ca_file":
			if v == "" {
				return Config{}, invalid("ca_file: empty path")
			}
			cfg.CAFile = v
		default:
			return Config{}, invalid("unknown parameter %q", name)
		}
	}
	if cfg.From.Address == "" {
		return Config{}, invalid("from: required (the sender address)")
	}
	if cfg.Auth != "" && cfg.Username == "" {
		return Config{}, invalid("auth: given without a user and password")
	}
	return cfg, nil
}
