package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Database configures the PostgreSQL connection, the source of truth.
type Database struct {
	// URL is the PostgreSQL connection string (postgres://user:pass@host:5432/db).
	URL string `envconfig:"PULSE_DATABASE_URL" required:"true" secret:"true"`
	// MaxConns bounds the connection pool of one process.
	MaxConns int32 `envconfig:"PULSE_DATABASE_MAX_CONNS" default:"8"`
	// Migrate applies the embedded schema migrations at start-up, under an advisory lock so
	// functions starting together do not race. Turn it off to run `pulse migrate` yourself.
	Migrate bool `envconfig:"PULSE_DATABASE_MIGRATE" default:"true"`
}

// Redis configures the Redis connection that holds the streams and counters.
type Redis struct {
	// URL is the Redis connection string (redis://[:password@]host:6379/0).
	URL string `envconfig:"PULSE_REDIS_URL" required:"true" secret:"true"`
	// Prefix is the hash tag every key shares, so one Redis Cluster slot holds them all:
	// prefix "pulse" gives keys such as "{pulse}:stream:high".
	Prefix string `envconfig:"PULSE_REDIS_PREFIX" default:"pulse"`
}

// Server configures a function's HTTP server.
type Server struct {
	// Port is the port to listen on; Knative sets it.
	Port int `envconfig:"PORT" default:"8080"`
	// ReadTimeout bounds reading one request, body included.
	ReadTimeout time.Duration `envconfig:"PULSE_HTTP_READ_TIMEOUT" default:"30s"`
	// WriteTimeout bounds handling one request and writing its answer.
	WriteTimeout time.Duration `envconfig:"PULSE_HTTP_WRITE_TIMEOUT" default:"60s"`
	// ShutdownTimeout is how long in-flight requests may take to finish after SIGTERM.
	ShutdownTimeout time.Duration `envconfig:"PULSE_SHUTDOWN_TIMEOUT" default:"30s"`
	// PprofAddr, when set (e.g. 127.0.0.1:6060), serves Go's pprof profiles there for
	// profiling under load. Keep it on a loopback address.
	PprofAddr string `envconfig:"PULSE_PPROF_ADDR"`
}

// Log configures logging.
type Log struct {
	// Level is the lowest level logged: debug, info, warn or error.
	Level string `envconfig:"PULSE_LOG_LEVEL" default:"info"`
}

// LogLevel returns Level; every configuration that embeds Log has it, which is how
// pkg/function builds any function's logger.
func (l Log) LogLevel() string { return l.Level }

// Retry configures the retry schedule of failed deliveries.
type Retry struct {
	// Schedule is the wait before each retry, comma separated; its length plus one is the
	// default number of attempts.
	Schedule []time.Duration `envconfig:"PULSE_RETRY_SCHEDULE" default:"5s,30s,2m,10m,30m,1h,3h"`
	// ScheduleEmail overrides Schedule for email; empty means Schedule.
	ScheduleEmail []time.Duration `envconfig:"PULSE_RETRY_SCHEDULE_EMAIL"`
	// ScheduleSMS overrides Schedule for SMS; empty means Schedule.
	ScheduleSMS []time.Duration `envconfig:"PULSE_RETRY_SCHEDULE_SMS"`
	// SchedulePush overrides Schedule for push messages; empty means Schedule.
	SchedulePush []time.Duration `envconfig:"PULSE_RETRY_SCHEDULE_PUSH"`
	// ScheduleWebhook overrides Schedule for webhooks; empty means Schedule.
	ScheduleWebhook []time.Duration `envconfig:"PULSE_RETRY_SCHEDULE_WEBHOOK"`
	// Jitter is the fraction by which each wait is randomly lengthened or shortened.
	Jitter float64 `envconfig:"PULSE_RETRY_JITTER" default:"0.2"`
}

// For returns the retry schedule of a channel.
func (r Retry) For(channel string) []time.Duration {
	var s []time.Duration
	switch channel {
	case "email":
		s = r.ScheduleEmail
	case "sms":
		s = r.ScheduleSMS
	case "push":
		s = r.SchedulePush
	case "webhook":
		s = r.ScheduleWebhook
	}
	if len(s) == 0 {
		return r.Schedule
	}
	return s
}

// Ingest configures functions/ingest.
type Ingest struct {
	Database
	Redis
	Server
	Log
	Retry

	// Auth is "token" (bearer tokens from Tokens) or "none" (no authentication, local runs only).
	Auth string `envconfig:"PULSE_INGEST_AUTH" default:"token"`
	// Tokens binds each bearer token to the CloudEvent source prefixes it may use:
	// "token1=https://shop.example.com/,urn:billing;token2=*". A prefix matches itself and
	// sources that continue it after a '/', ':' or '#' (see Tokens.Allows). Read from a
	// Kubernetes Secret.
	Tokens Tokens `envconfig:"PULSE_INGEST_TOKENS" secret:"true"`
	// MaxRequestBytes bounds a request body; larger requests get 413.
	MaxRequestBytes int64 `envconfig:"PULSE_INGEST_MAX_REQUEST_BYTES" default:"10485760"`
	// MaxBatch bounds the number of events in one application/cloudevents-batch+json request.
	MaxBatch int `envconfig:"PULSE_INGEST_MAX_BATCH" default:"1000"`
	// CommitBatch bounds how many notifications one PostgreSQL transaction commits; concurrent
	// requests share transactions up to this size.
	CommitBatch int `envconfig:"PULSE_INGEST_COMMIT_BATCH" default:"1000"`
	// Committers bounds the transactions the group committer keeps in flight at once; a
	// transaction starts beside another only when a quarter of PULSE_INGEST_COMMIT_BATCH waits.
	// Two keep batch ingest as fast as four, with less memory held (bench/REPORT.md).
	Committers int `envconfig:"PULSE_INGEST_COMMITTERS" default:"2"`
	// Channels are the channels ingest accepts notifications for, comma separated; any other
	// gets 400 naming data.channel. List webhook plus every channel whose accounts the
	// deliver functions have (PULSE_EMAIL_ACCOUNTS, PULSE_SMS_ACCOUNTS, PULSE_PUSH_ACCOUNTS);
	// config/validate checks the manifests keep the two in step.
	Channels Channels `envconfig:"PULSE_CHANNELS" default:"webhook"`
}

// Deliver configures functions/deliver-high and functions/deliver-low.
type Deliver struct {
	Database
	Redis
	Server
	Log
	Retry

	// SendTimeout bounds one call to a channel provider; it must be shorter than Lease and
	// than the stream source's reclaim time.
	SendTimeout time.Duration `envconfig:"PULSE_SEND_TIMEOUT" default:"10s"`
	// Lease is how long a claimed notification stays "sending" before cron hands it back.
	Lease time.Duration `envconfig:"PULSE_LEASE" default:"60s"`
	// WebhookSecret signs webhooks (Standard Webhooks, "whsec_" followed by base64). Several
	// secrets separated by spaces or commas each sign every webhook, so a secret can be
	// rotated without a window in which receivers reject webhooks (docs/channels/webhook.md).
	WebhookSecret string `envconfig:"PULSE_WEBHOOK_SECRET" required:"true" secret:"true"`
	// EmailAccounts are the SMTP accounts email is sent through, in order of preference:
	// "name=smtp://user:pass@host:587?from=...&rate=100/s", comma or newline separated.
	// Read from a Kubernetes Secret. Empty: email notifications fail.
	EmailAccounts Accounts `envconfig:"PULSE_EMAIL_ACCOUNTS" secret:"true"`
	// SMSAccounts are the SMS accounts ("name=twilio://SID:TOKEN@api.twilio.com?from=..."),
	// as EmailAccounts. Read from a Kubernetes Secret. Empty: SMS notifications fail.
	SMSAccounts Accounts `envconfig:"PULSE_SMS_ACCOUNTS" secret:"true"`
	// PushAccounts are the push accounts ("name=fcm://?credentials_file=...&project=..."),
	// as EmailAccounts. Read from a Kubernetes Secret. Empty: push notifications fail.
	PushAccounts Accounts `envconfig:"PULSE_PUSH_ACCOUNTS" secret:"true"`
	// BreakerThreshold is how many transient failures in a row open an account's circuit
	// breaker (per pod); while it is open, sends go to the channel's next account.
	BreakerThreshold uint32 `envconfig:"PULSE_BREAKER_THRESHOLD" default:"5"`
	// BreakerCooldown is how long an open breaker stays open before one trial send may
	// close it again.
	BreakerCooldown time.Duration `envconfig:"PULSE_BREAKER_COOLDOWN" default:"30s"`
	// RateLimitWait is the longest a send waits in the pod for its account's rate limit
	// before the notification is put back to be sent shortly (not counted as an attempt).
	RateLimitWait time.Duration `envconfig:"PULSE_RATE_LIMIT_WAIT" default:"1s"`
	// Batch bounds how many claims, or how many outcomes, one PostgreSQL statement carries;
	// concurrent deliveries share statements up to this size.
	Batch int `envconfig:"PULSE_DELIVER_BATCH" default:"256"`
	// Committers is the number of claim (and of record) statements in flight at once. One
	// is fastest: deliveries that arrive while a statement runs wait and share the next, so
	// statements grow with the load instead of splitting it (bench/REPORT.md).
	Committers int `envconfig:"PULSE_DELIVER_COMMITTERS" default:"1"`
	// AllowPrivateWebhooks lets webhooks reach loopback, private, link-local and other
	// special-purpose addresses, and this host's own; cloud metadata addresses stay refused.
	// For local runs and tests (docs/security.md).
	AllowPrivateWebhooks bool `envconfig:"PULSE_WEBHOOK_ALLOW_PRIVATE" default:"false"`
}

// WebhookSecrets splits WebhookSecret into its secrets.
func (c Deliver) WebhookSecrets() []string {
	return strings.FieldsFunc(c.WebhookSecret, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// ChannelAccounts returns the accounts of each channel that has any, keyed by channel name.
func (c Deliver) ChannelAccounts() map[string]Accounts {
	out := map[string]Accounts{}
	for name, accounts := range map[string]Accounts{"email": c.EmailAccounts, "sms": c.SMSAccounts, "push": c.PushAccounts} {
		if len(accounts) > 0 {
			out[name] = accounts
		}
	}
	return out
}

// Channels lists the channels these deliver functions can send: webhook, and each channel
// that has accounts. It is what ingest's PULSE_CHANNELS should say.
func (c Deliver) Channels() Channels {
	out := Channels{}
	for _, name := range knownChannels {
		if _, ok := c.ChannelAccounts()[name]; ok || name == "webhook" {
			out = append(out, name)
		}
	}
	return out
}

// StreamSource configures cmd/stream-source, which feeds one priority's stream to its sink.
type StreamSource struct {
	Redis
	Log

	// Priority names the stream to read: high or low.
	Priority string `envconfig:"PULSE_PRIORITY" required:"true"`
	// Sink is the URL events are POSTed to; Knative's ContainerSource sets it.
	Sink string `envconfig:"K_SINK" required:"true"`
	// Group is the consumer group's name.
	Group string `envconfig:"PULSE_STREAM_GROUP" default:"pulse-deliver"`
	// Consumer names this reader within the group; empty means the host name.
	Consumer string `envconfig:"PULSE_STREAM_CONSUMER"`
	// Concurrency bounds the events in flight to the sink.
	Concurrency int `envconfig:"PULSE_STREAM_CONCURRENCY" default:"64"`
	// SinkTimeout bounds one POST to the sink.
	SinkTimeout time.Duration `envconfig:"PULSE_SINK_TIMEOUT" default:"30s"`
	// ReclaimIdle is how long an entry may stay pending before another consumer claims it;
	// it must be longer than SinkTimeout.
	ReclaimIdle time.Duration `envconfig:"PULSE_STREAM_RECLAIM_IDLE" default:"60s"`
	// MaxDeliveries is how many times an entry is offered before it goes to the dead-letter
	// stream.
	MaxDeliveries int64 `envconfig:"PULSE_STREAM_MAX_DELIVERIES" default:"10"`
	// ShutdownTimeout is how long in-flight sends may take to finish after SIGTERM.
	ShutdownTimeout time.Duration `envconfig:"PULSE_SHUTDOWN_TIMEOUT" default:"30s"`
}

// Load fills cfg (a pointer to one of this package's structs) from the environment and
// checks it. Its errors never quote the value of a secret variable (a field tagged
// secret:"true"): envconfig's own errors quote the value they could not parse.
func Load(cfg any) error {
	if err := envconfig.Process("", cfg); err != nil {
		return fmt.Errorf("load configuration: %w", redact(cfg, err))
	}
	if v, ok := cfg.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return fmt.Errorf("load configuration: %w", err)
		}
	}
	return nil
}

func (c *Ingest) validate() error {
	switch c.Auth {
	case "none":
	case "token":
		if len(c.Tokens) == 0 {
			return fmt.Errorf("PULSE_INGEST_TOKENS is empty: set tokens, or PULSE_INGEST_AUTH=none for local runs")
		}
	default:
		return fmt.Errorf("PULSE_INGEST_AUTH=%q: want token or none", c.Auth)
	}
	if len(c.Channels) == 0 {
		return fmt.Errorf("PULSE_CHANNELS is empty: list the channels ingest accepts, such as webhook,email")
	}
	if c.MaxBatch < 1 || c.CommitBatch < 1 || c.Committers < 1 {
		return fmt.Errorf("PULSE_INGEST_MAX_BATCH, PULSE_INGEST_COMMIT_BATCH and PULSE_INGEST_COMMITTERS must be positive")
	}
	return c.Retry.validate()
}

func (c *Deliver) validate() error {
	secrets := c.WebhookSecrets()
	if len(secrets) == 0 {
		return fmt.Errorf("PULSE_WEBHOOK_SECRET is empty")
	}
	for i, s := range secrets {
		if !strings.HasPrefix(s, "whsec_") {
			return fmt.Errorf("PULSE_WEBHOOK_SECRET: secret %d of %d does not start with whsec_", i+1, len(secrets))
		}
	}
	if c.BreakerThreshold < 1 || c.BreakerCooldown <= 0 {
		return fmt.Errorf("PULSE_BREAKER_THRESHOLD and PULSE_BREAKER_COOLDOWN must be positive")
	}
	if c.RateLimitWait < 0 || c.RateLimitWait >= c.SendTimeout {
		return fmt.Errorf("PULSE_RATE_LIMIT_WAIT (%s) must be at least 0 and shorter than PULSE_SEND_TIMEOUT (%s)", c.RateLimitWait, c.SendTimeout)
	}
	if c.SendTimeout <= 0 || c.SendTimeout >= c.Lease {
		return fmt.Errorf("PULSE_SEND_TIMEOUT (%s) must be positive and shorter than PULSE_LEASE (%s)", c.SendTimeout, c.Lease)
	}
	return c.Retry.validate()
}

func (c *StreamSource) validate() error {
	if c.Priority != "high" && c.Priority != "low" {
		return fmt.Errorf("PULSE_PRIORITY=%q: want high or low", c.Priority)
	}
	// The rest (concurrency, timeouts, the sink's URL) is the source's own: streamsource.New
	// checks it, in one place.
	return nil
}

func (r Retry) validate() error {
	if len(r.Schedule) == 0 {
		return fmt.Errorf("PULSE_RETRY_SCHEDULE is empty")
	}
	if r.Jitter < 0 || r.Jitter >= 1 {
		return fmt.Errorf("PULSE_RETRY_JITTER=%v: want 0 <= jitter < 1", r.Jitter)
	}
	return nil
}

// Tokens maps each ingest bearer token to the CloudEvent source prefixes it may use; "*"
// allows every source.
type Tokens map[string][]string

// Decode parses "token1=prefix1,prefix2;token2=*"; entries may also be separated by newlines.
func (t *Tokens) Decode(value string) error {
	out := Tokens{}
	for _, entry := range strings.FieldsFunc(value, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		token, prefixes, ok := strings.Cut(entry, "=")
		token = strings.TrimSpace(token)
		if !ok || token == "" || strings.TrimSpace(prefixes) == "" {
			// The entry holds a secret: never echo it back.
			return secretSafeError("an entry is not of the form token=prefix[,prefix]")
		}
		for _, p := range strings.Split(prefixes, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out[token] = append(out[token], p)
			}
		}
	}
	*t = out
	return nil
}

// Allows reports whether token may use source: whether one of its prefixes is "*", or is
// source itself, or is followed in source by a boundary ('/', ':' or '#'), or itself ends
// with one. So "urn:billing" allows "urn:billing" and "urn:billing:invoices" but not
// "urn:billingother", and "https://shop.example.com" does not allow
// "https://shop.example.com.evil.example".
func (t Tokens) Allows(token, source string) bool {
	for _, p := range t[token] {
		if p == "*" || matchesPrefix(p, source) {
			return true
		}
	}
	return false
}

// sourceBoundaries are the characters after which a source prefix may be continued.
const sourceBoundaries = "/:#"

func matchesPrefix(prefix, source string) bool {
	rest, ok := strings.CutPrefix(source, prefix)
	switch {
	case !ok || prefix == "":
		return false
	case rest == "", strings.ContainsRune(sourceBoundaries, rune(prefix[len(prefix)-1])):
		return true
	}
	return strings.ContainsRune(sourceBoundaries, rune(rest[0]))
}

// All lists a pointer to each configuration struct, for checks that every setting is
// documented and deployed.
var All = []any{&Ingest{}, &Deliver{}, &StreamSource{}, &Cron{}, &Metrics{}, &Dev{}, &Client{}}
