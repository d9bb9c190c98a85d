package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// HeaderNotificationID carries the notification id in every message, the same on every
// attempt, so a receiver can tell a repeated attempt from a new notification.
const HeaderNotificationID = "X-Pulse-Notification-Id"

// HeaderAttempt carries the attempt number (1 for the first).
const HeaderAttempt = "X-Pulse-Attempt"

// sessionTimeout bounds opening a session (connect, greeting, STARTTLS, AUTH) when the
// caller's context has no earlier deadline.
const sessionTimeout = 30 * time.Second

// Provider sends email through one SMTP account. It is safe for concurrent use; Close it to
// end the sessions it keeps open.
type Provider struct {
	cfg    Config
	client *mail.Client
	pool   *pool
	domain string
	// dialing lets one session open at a time: go-mail's Client may write its AUTH choice
	// while opening a session under a read lock, so two at once would race.
	dialing chan struct{}
}

var _ channel.Provider = (*Provider)(nil)

// Option changes how New builds a Provider.
type Option func(*Provider)

// WithClock makes the Provider read the time from now, which decides when an idle
// connection is too old to reuse.
func WithClock(now func() time.Time) Option {
	return func(p *Provider) { p.pool.now = now }
}

// New returns a Provider for the account cfg; it opens no connection until the first Send.
func New(cfg Config, opts ...Option) (*Provider, error) {
	if cfg.Host == "" {
		return nil, errors.New("email account: no host")
	}
	if cfg.From.Address == "" {
		return nil, errors.New("email account: no from address")
	}
	_, domain, ok := strings.Cut(cfg.From.Address, "@")
	if !ok || domain == "" {
		return nil, errors.New("email account: from address has no domain")
	}
	cfg.TLS = cmp.Or(cfg.TLS, TLSStartTLS)
	cfg.PoolSize = cmp.Or(cfg.PoolSize, DefaultPoolSize)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
		}
	}
	tlsConfig := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // only when the account asks for it, for tests
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email account: read ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email account: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsConfig.RootCAs = roots
	}

	p := &Provider{cfg: cfg, domain: domain, dialing: make(chan struct{}, 1)}
	p.pool = newPool(cfg.PoolSize, cfg.IdleTimeout, p.dial)
	for _, o := range opts {
		o(p)
	}

	policy := mail.TLSMandatory
	switch cfg.TLS {
	case TLSOpportunistic:
		policy = mail.TLSOpportunistic
	case TLSNone, TLSImplicit:
		// Implicit TLS is done by dialTLS below: go-mail's own TLS dial would hide the
		// connection whose deadline a cancelled send must reach.
		policy = mail.NoTLS
	}
	clientOpts := []mail.Option{
		mail.WithPort(cfg.Port), mail.WithTimeout(sessionTimeout), mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(tlsConfig), mail.WithDialContextFunc(dialer(cfg.TLS == TLSImplicit, tlsConfig)),
	}
	if cfg.Username != "" {
		clientOpts = append(clientOpts, mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
		switch cfg.Auth {
		case AuthPlain:
			clientOpts = append(clientOpts, mail.WithSMTPAuth(mail.SMTPAuthPlain))
		case AuthLogin:
			clientOpts = append(clientOpts, mail.WithSMTPAuth(mail.SMTPAuthLogin))
		case AuthCRAMMD5:
			clientOpts = append(clientOpts, mail.WithSMTPAuth(mail.SMTPAuthCramMD5))
		default:
			// PLAIN and LOGIN refuse to send a password over an unencrypted connection to
			// anything but localhost.
			clientOpts = append(clientOpts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256,
				mail.SMTPAuthSCRAMSHA1, mail.SMTPAuthPlain, mail.SMTPAuthLogin, mail.SMTPAuthCramMD5))
		}
	}
	client, err := mail.NewClient(cfg.Host, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("email account: %w", err)
	}
	p.client = client
	return p, nil
}

// connKey carries, into dialer, the *dialed that records the connection it opens.
type connKey struct{}

// dialed is the connection under a session being opened, so that a cancelled dial can put a
// deadline on it: go-mail bounds the greeting, STARTTLS and AUTH by its own timeout only.
type dialed struct {
	mu        sync.Mutex
	conn      net.Conn
	cancelled bool
}

// set records c, already expired if the dial was cancelled meanwhile.
func (d *dialed) set(c net.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn = c
	if d.cancelled {
		_ = c.SetDeadline(time.Unix(1, 0))
	}
}

// cancel makes every read and write on the connection fail at once.
func (d *dialed) cancel() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cancelled = true
	if d.conn != nil {
		_ = d.conn.SetDeadline(time.Unix(1, 0))
	}
}

// dialer opens TCP (or, implicit, TLS) connections and records each in the *dialed the
// context carries.
func dialer(implicit bool, config *tls.Config) mail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		var c net.Conn
		var err error
		if implicit {
			c, err = (&tls.Dialer{NetDialer: &d, Config: config}).DialContext(ctx, network, addr)
		} else {
			c, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		if rec, ok := ctx.Value(connKey{}).(*dialed); ok {
			rec.set(c)
		}
		return c, nil
	}
}

// dial opens one session: connect, greeting, EHLO, STARTTLS and AUTH as configured.
func (p *Provider) dial(ctx context.Context) (*conn, error) {
	select {
	case p.dialing <- struct{}{}:
		defer func() { <-p.dialing }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rec := &dialed{}
	stop := context.AfterFunc(ctx, rec.cancel)
	defer stop()
	c, err := p.client.DialToSMTPClientWithContext(context.WithValue(ctx, connKey{}, rec))
	rec.mu.Lock()
	raw := rec.conn
	rec.mu.Unlock()
	if err != nil {
		if raw != nil {
			_ = raw.Close()
		}
		if ctx.Err() != nil {
			if _, ok := replyOf(err); !ok {
				return nil, ctx.Err()
			}
		}
		return nil, err
	}
	return &conn{smtp: c, raw: raw}, nil
}

// Close ends every pooled session (QUIT) and makes later sends fail.
func (p *Provider) Close() error {
	return p.pool.close()
}

// Send sends m as one email to m.To. It never retries a send the relay may have seen; a
// pooled session that turns out to be closed by the relay at MAIL FROM is replaced once.
func (p *Provider) Send(ctx context.Context, m channel.Message) channel.Result {
	msg, err := p.message(m)
	if err != nil {
		return channel.Result{Outcome: channel.Permanent, Err: err}
	}
	for try := 0; ; try++ {
		c, fresh, err := p.pool.get(ctx)
		if err != nil {
			if r, ok := replyOf(err); ok {
				return classify(&sendError{stage: stageSession, reply: r, err: err})
			}
			return classify(&sendError{stage: stageSession, err: err})
		}
		err = p.transact(ctx, c, msg)
		// A reused session that ends at MAIL FROM, silently or with 421 (relays say that
		// when they time out an idle session), was closed by the relay while idle.
		var se *sendError
		stale := errors.As(err, &se) && se.stage == stageMail && (se.reply.Code == 0 || se.reply.Code == 421) && !fresh
		p.pool.put(c, err == nil || keepAfter(c, err))
		if stale && try == 0 && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return classify(err)
		}
		return channel.Result{Outcome: channel.Delivered, ProviderMessageID: msg.GetMessageID()}
	}
}

// keepAfter says whether c may be reused after a send failed with err: only when the relay
// answered a command with a reply other than 421 (closing) and then accepted RSET.
func keepAfter(c *conn, err error) bool {
	var se *sendError
	if !errors.As(err, &se) || se.reply.Code == 0 || se.reply.Code == 421 || se.stage == stageData {
		return false
	}
	_ = c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	return c.smtp.Reset() == nil
}

// transact runs one mail transaction on c.
func (p *Provider) transact(ctx context.Context, c *conn, msg *mail.Msg) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(sessionTimeout)
	}
	_ = c.raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(st stage, err error) error {
		r, ok := replyOf(err)
		if !ok && ctx.Err() != nil {
			// The deadline set from ctx is what broke the connection: say so.
			err = ctx.Err()
		}
		return &sendError{stage: st, reply: r, err: err}
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return &sendError{stage: stageMail, err: err}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return &sendError{stage: stageRcpt, err: err}
	}
	if err := c.smtp.Mail(from); err != nil {
		return fail(stageMail, err)
	}
	for _, rcpt := range rcpts {
		if err := c.smtp.Rcpt(rcpt); err != nil {
			return fail(stageRcpt, err)
		}
	}
	w, err := c.smtp.Data()
	if err != nil {
		return fail(stageData, err)
	}
	if _, err := msg.WriteTo(w); err != nil {
		return fail(stageData, err)
	}
	if err := w.Close(); err != nil {
		return fail(stageEnd, err)
	}
	return nil
}

// safeID matches notification ids that may go into a Message-ID as they are.
var safeID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// MessageID returns the Message-ID Pulse gives every attempt of notification id sent from
// an address at domain, without the angle brackets. It is the same on every attempt: a
// retry after an answer that never came (a connection dropped after the final dot) may
// deliver the message twice, and mail systems that see the same Message-ID again can treat
// it as the same message.
func MessageID(notificationID, domain string) string {
	id := notificationID
	if !safeID.MatchString(id) {
		id = fmt.Sprintf("%x", []byte(id))
		if len(id) > 128 {
			id = id[:128]
		}
	}
	return id + "@" + domain
}

// message builds the MIME message of m.
func (p *Provider) message(m channel.Message) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(p.cfg.From.String()); err != nil {
		return nil, fmt.Errorf("email: from address: %w", err)
	}
	if p.cfg.ReplyTo != nil {
		if err := msg.ReplyTo(p.cfg.ReplyTo.String()); err != nil {
			return nil, fmt.Errorf("email: reply_to address: %w", err)
		}
	}
	if err := msg.To(m.To); err != nil {
		return nil, errors.New("email: recipient is not a valid address")
	}
	// Ingest allows one line only; a line break here would start a header of its own.
	msg.Subject(strings.NewReplacer("\r", " ", "\n", " ").Replace(m.Subject))
	msg.SetMessageIDWithValue(MessageID(m.NotificationID, p.domain))
	msg.SetDate()
	msg.SetGenHeader(HeaderNotificationID, m.NotificationID)
	if m.Attempt > 0 {
		msg.SetGenHeader(HeaderAttempt, fmt.Sprint(m.Attempt))
	}
	msg.SetUserAgent("Pulse")
	switch {
	case m.Body != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Body)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.Body)
	}
	return msg, nil
}
