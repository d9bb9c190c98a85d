package capture

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Stages of an SMTP transaction at which SMTPConfig.Reject is asked for an answer.
const (
	StageMail = "MAIL"
	StageRcpt = "RCPT"
	StageData = "DATA"
)

// ErrDrop, returned by SMTPConfig.Reject, makes the server close the connection without an
// answer, as a relay that dies mid-transaction would.
var ErrDrop = errors.New("drop the connection")

// SMTPConfig configures an SMTP capture server.
type SMTPConfig struct {
	// Out, when not nil, gets one line per message received.
	Out io.Writer
	// TLS, when not nil, is offered with STARTTLS, or spoken from the first byte when
	// Implicit is set.
	TLS      *tls.Config
	Implicit bool
	// Username and Password, when set, make AUTH PLAIN required before MAIL FROM.
	Username, Password string
	// Reject, when not nil, is asked at each stage (StageMail with the sender, StageRcpt with
	// the recipient, StageData with the first recipient after the message was read) and its
	// error is the answer: an *smtp.SMTPError, or ErrDrop.
	Reject func(stage, addr string) error
	// MaxMessageBytes bounds a message; 0 means 10 MiB.
	MaxMessageBytes int64
}

// Mail is one message the SMTP capture accepted.
type Mail struct {
	// From and To are the envelope sender and recipients.
	From string
	To   []string
	// Header is the message's header.
	Header mail.Header
	// Text and HTML are the text/plain and text/html parts (or the single body).
	Text, HTML string
	// Raw is the message as received.
	Raw []byte
}

// SMTP is an SMTP server that accepts every message (unless told to reject it), parses it
// as MIME and keeps it. It is safe for concurrent use.
type SMTP struct {
	cfg    SMTPConfig
	server *smtp.Server

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	mails     *inbox[Mail]
	// conns are the connections seen; go-smtp starts a new session after STARTTLS, so
	// sessions are not connections.
	conns map[*smtp.Conn]bool
	// tally counts the messages accepted by X-Pulse-Notification-Id, and apart those without
	// one, so that counting them stays cheap however many a run sends.
	tally tally
}

// NewSMTP returns a capture server; serve it with Serve.
func NewSMTP(cfg SMTPConfig) *SMTP {
	s := &SMTP{cfg: cfg, mails: newInbox[Mail](), conns: map[*smtp.Conn]bool{}}
	s.server = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.server.Domain = "pulse-capture.localhost"
	s.server.MaxMessageBytes = cfg.MaxMessageBytes
	if s.server.MaxMessageBytes == 0 {
		s.server.MaxMessageBytes = 10 << 20
	}
	s.server.MaxRecipients = 100
	s.server.EnableSMTPUTF8 = true
	s.server.ErrorLog = log.New(io.Discard, "", 0)
	if !cfg.Implicit {
		s.server.TLSConfig = cfg.TLS
	}
	return s
}

// Serve accepts connections on l until Close.
func (s *SMTP) Serve(l net.Listener) error {
	if s.cfg.Implicit && s.cfg.TLS != nil {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	// go-smtp's Serve called after its Close would serve forever: keep the listener here
	// too, so Close reaches it either way.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return l.Close()
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := s.server.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe serves on addr until ctx is done.
func (s *SMTP) ListenAndServe(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for SMTP on %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	return s.Serve(l)
}

// Close stops the server and ends its sessions. Calling it again does nothing.
func (s *SMTP) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	listeners := s.listeners
	s.mu.Unlock()
	err := s.server.Close()
	for _, l := range listeners {
		_ = l.Close() // already closed by the server, unless Serve had not yet reached it
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Received is signalled (without blocking, so it may coalesce) after each accepted message.
func (s *SMTP) Received() <-chan struct{} { return s.mails.received }

// Mails returns the messages accepted so far, oldest first.
func (s *SMTP) Mails() []Mail { return s.mails.all() }

// Count returns how many messages carried notification id in X-Pulse-Notification-Id.
func (s *SMTP) Count(id string) int { return s.tally.count(id) }

// Stats returns how many messages carrying X-Pulse-Notification-Id were accepted, how many
// distinct notification ids they carried, and how many messages carried none.
func (s *SMTP) Stats() (total, distinct, anonymous int) { return s.tally.stats() }

// Connections returns how many connections have sent EHLO (or HELO).
func (s *SMTP) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *SMTP) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	return &smtpSession{srv: s, conn: c}, nil
}

// smtpSession is one connection's transaction state.
type smtpSession struct {
	srv    *SMTP
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.srv.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.srv.cfg.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.srv.cfg.Username || password != ss.srv.cfg.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

// reject asks the configured hook for an answer at stage.
func (ss *smtpSession) reject(stage, addr string) error {
	if ss.srv.cfg.Reject == nil {
		return nil
	}
	err := ss.srv.cfg.Reject(stage, addr)
	if errors.Is(err, ErrDrop) {
		_ = ss.conn.Conn().Close()
	}
	return err
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.cfg.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if err := ss.reject(StageMail, from); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.reject(StageRcpt, to); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	first := ""
	if len(ss.to) > 0 {
		first = ss.to[0]
	}
	if err := ss.reject(StageData, first); err != nil {
		return err
	}
	m, err := parseMail(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message is not valid MIME"}
	}
	m.From, m.To = ss.from, append([]string(nil), ss.to...)
	id := m.Header.Get("X-Pulse-Notification-Id")
	s := ss.srv
	if s.cfg.Out != nil {
		fmt.Fprintf(s.cfg.Out, "email received: to=%s subject=%q notification=%s, %d bytes (text %d, html %d)\n",
			strings.Join(m.To, ","), m.Header.Get("Subject"), id, len(raw), len(m.Text), len(m.HTML))
	}
	if id == "" {
		s.tally.addApart()
	} else {
		s.tally.add(id)
	}
	s.mails.add(m, nil)
	return nil
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error { return nil }

// parseMail reads raw as a MIME message: a single text part, or multipart/alternative with
// text/plain and text/html parts.
func parseMail(raw []byte) (Mail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Mail{}, err
	}
	m := Mail{Header: msg.Header, Raw: raw}
	if err := readPart(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		return Mail{}, err
	}
	if subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Header["Subject"] = []string{subject}
	}
	return m, nil
}

// maxDepth bounds how deep multiparts may nest; Pulse's own messages nest one level.
const maxDepth = 8

func readPart(m *Mail, contentType, encoding string, body io.Reader, depth int) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth == maxDepth {
			return errors.New("multipart nested too deep")
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := readPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	content, err := io.ReadAll(decodeTransfer(encoding, body))
	if err != nil {
		return err
	}
	switch mediaType {
	case "text/plain":
		m.Text = string(content)
	case "text/html":
		m.HTML = string(content)
	}
	return nil
}

// decodeTransfer undoes a part's Content-Transfer-Encoding.
func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r) // it skips the line breaks
	}
	return r
}
