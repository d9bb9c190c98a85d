package email_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/email"
)

const (
	testUser     = "pulse@relay.test"
	testPassword = "s3cret:p@ss/word"
)

// testCert is a self-signed certificate for 127.0.0.1 and the PEM file of it that an
// account's ca_file names.
type testCert struct {
	config *tls.Config
	caFile string
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pulse test relay"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	caFile := filepath.Join(t.TempDir(), "relay-ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return testCert{
		config: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		caFile: caFile,
	}
}

// relay is an SMTP server started for one test.
type relay struct {
	*capture.SMTP
	addr string
	cert testCert
	// reject is consulted by the server at every stage; nil accepts.
	reject atomic.Pointer[func(stage, addr string) error]
}

type relayOptions struct {
	implicit bool
	noTLS    bool
	noAuth   bool
}

func startRelay(t *testing.T, opts relayOptions) *relay {
	t.Helper()
	r := &relay{cert: newTestCert(t)}
	cfg := capture.SMTPConfig{
		TLS:      r.cert.config,
		Implicit: opts.implicit,
		Reject: func(stage, addr string) error {
			if f := r.reject.Load(); f != nil {
				return (*f)(stage, addr)
			}
			return nil
		},
	}
	if opts.noTLS {
		cfg.TLS = nil
	}
	if !opts.noAuth {
		cfg.Username, cfg.Password = testUser, testPassword
	}
	r.SMTP = capture.NewSMTP(cfg)
	l := pulsetest.Listen(t)
	r.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- r.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, r.Close())
		require.NoError(t, <-done)
	})
	return r
}

// onStage makes the relay answer f at every stage from now on.
func (r *relay) onStage(f func(stage, addr string) error) { r.reject.Store(&f) }

// failOnce makes the relay answer err the first time a session reaches stage, and accept
// everything after.
func (r *relay) failOnce(stage string, err error) {
	var done atomic.Bool
	r.onStage(func(s, _ string) error {
		if s == stage && done.CompareAndSwap(false, true) {
			return err
		}
		return nil
	})
}

// url returns the account URL of the relay, with extra query parameters.
func (r *relay) url(scheme string, extra string) string {
	return accountURL(scheme, url.UserPassword(testUser, testPassword), r.addr, r.cert.caFile, extra)
}

func accountURL(scheme string, user *url.Userinfo, addr, caFile, extra string) string {
	q := url.Values{"from": {"Pulse Alerts <alerts@example.com>"}}
	if caFile != "" {
		q.Set("ca_file", caFile)
	}
	u := url.URL{Scheme: scheme, User: user, Host: addr, RawQuery: q.Encode()}
	if extra != "" {
		u.RawQuery += "&" + extra
	}
	return u.String()
}

func newProvider(t *testing.T, rawURL string, opts ...email.Option) *email.Provider {
	t.Helper()
	cfg, err := email.ParseURL(rawURL)
	require.NoError(t, err)
	p, err := email.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func message(id string) channel.Message {
	return channel.Message{NotificationID: id, Channel: "email", To: "bob@example.org", Subject: "Your order has shipped",
		Body: "Order 1042 is on its way.\n", HTML: "<p>Order <b>1042</b> is on its way.</p>\n", Attempt: 2}
}

func send(t *testing.T, p *email.Provider, m channel.Message) channel.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Send(ctx, m)
}

func TestSendStartTLSWithAuth(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{})
	p := newProvider(t, r.url("smtp", "reply_to=support%40example.com"))

	res := send(t, p, message("019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55"))
	require.NoError(t, res.Err)
	require.Equal(t, channel.Delivered, res.Outcome)
	require.Equal(t, "<019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55@example.com>", res.ProviderMessageID)

	mails := r.Mails()
	require.Len(t, mails, 1)
	got := mails[0]
	require.Equal(t, "alerts@example.com", got.From)
	require.Equal(t, []string{"bob@example.org"}, got.To)
	headers := map[string]string{}
	for _, h := range []string{"From", "To", "Reply-To", "Subject", "Message-Id", "X-Pulse-Notification-Id", "X-Pulse-Attempt", "Mime-Version"} {
		headers[h] = got.Header.Get(h)
	}
	want := map[string]string{
		"From":                    `"Pulse Alerts" <alerts@example.com>`,
		"To":                      "<bob@example.org>",
		"Reply-To":                "<support@example.com>",
		"Subject":                 "Your order has shipped",
		"Message-Id":              "<019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55@example.com>",
		"X-Pulse-Notification-Id": "019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55",
		"X-Pulse-Attempt":         "2",
		"Mime-Version":            "1.0",
	}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	require.True(t, strings.HasPrefix(got.Header.Get("Content-Type"), "multipart/alternative;"), got.Header.Get("Content-Type"))
	require.Equal(t, "Order 1042 is on its way.\r\n", got.Text)
	require.Equal(t, "<p>Order <b>1042</b> is on its way.</p>\r\n", got.HTML)
	_, err := got.Header.Date()
	require.NoError(t, err, "Date header")
}

func TestSendSinglePart(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		body, html string
		wantType   string
	}{
		"text only": {body: "plain words", wantType: "text/plain"},
		"html only": {html: "<p>rich words</p>", wantType: "text/html"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, relayOptions{})
			p := newProvider(t, r.url("smtp", ""))
			m := message("n-" + strings.ReplaceAll(name, " ", "-"))
			m.Body, m.HTML = tt.body, tt.html
			res := send(t, p, m)
			require.NoError(t, res.Err)
			got := r.Mails()[0]
			require.True(t, strings.HasPrefix(got.Header.Get("Content-Type"), tt.wantType), got.Header.Get("Content-Type"))
			require.Equal(t, tt.body, strings.TrimSuffix(got.Text, "\r\n"))
			require.Equal(t, tt.html, strings.TrimSuffix(got.HTML, "\r\n"))
		})
	}
}

func TestSendImplicitTLS(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{implicit: true})
	p := newProvider(t, r.url("smtps", "auth=plain"))
	res := send(t, p, message("implicit-1"))
	require.NoError(t, res.Err)
	require.Equal(t, channel.Delivered, res.Outcome)
	require.Equal(t, 1, r.Count("implicit-1"))
}

func smtpErr(code int, enhanced smtp.EnhancedCode, text string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}

func TestReplyClassification(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		stage         string
		answer        error
		want          channel.Outcome
		wantCode      string
		undeliverable bool
		wantErr       string
	}{
		"mailbox busy": {stage: capture.StageRcpt, answer: smtpErr(450, smtp.EnhancedCode{4, 2, 1}, "Mailbox busy, try later"),
			want: channel.Transient, wantCode: "4.2.1", wantErr: "smtp RCPT TO: 450 4.2.1 Mailbox busy, try later"},
		"greylisted at MAIL": {stage: capture.StageMail, answer: smtpErr(451, smtp.EnhancedCode{4, 7, 1}, "Greylisted"),
			want: channel.Transient, wantCode: "4.7.1", wantErr: "smtp MAIL FROM: 451 4.7.1 Greylisted"},
		"closing": {stage: capture.StageMail, answer: smtpErr(421, smtp.EnhancedCode{4, 3, 2}, "Shutting down"),
			want: channel.Transient, wantCode: "4.3.2"},
		"no such user": {stage: capture.StageRcpt, answer: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "<bob@example.org>: Recipient address rejected: User unknown"),
			want: channel.Permanent, wantCode: "5.1.1", undeliverable: true, wantErr: "smtp RCPT TO: 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown"},
		"recipient not found (Exchange)": {stage: capture.StageRcpt, answer: smtpErr(550, smtp.EnhancedCode{5, 1, 10}, "RESOLVER.ADR.RecipientNotFound"),
			want: channel.Permanent, wantCode: "5.1.10", undeliverable: true},
		"no such user after DATA": {stage: capture.StageData, answer: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "User unknown"),
			want: channel.Permanent, wantCode: "5.1.1", undeliverable: true, wantErr: "smtp end of DATA: 550 5.1.1 User unknown"},
		"relay denied": {stage: capture.StageRcpt, answer: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Relay access denied"),
			want: channel.Permanent, wantCode: "5.7.1"},
		"other address status is not suppressed": {stage: capture.StageRcpt, answer: smtpErr(550, smtp.EnhancedCode{5, 1, 0}, "Address rejected"),
			want: channel.Permanent, wantCode: "5.1.0"},
		"sender unknown is not the recipient's fault": {stage: capture.StageMail, answer: smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "Sender unknown"),
			want: channel.Permanent, wantCode: "5.1.1"},
		"message refused as spam": {stage: capture.StageData, answer: smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Message rejected as spam"),
			want: channel.Permanent, wantCode: "5.7.1"},
		"storage full after DATA": {stage: capture.StageData, answer: smtpErr(452, smtp.EnhancedCode{4, 3, 1}, "Insufficient system storage"),
			want: channel.Transient, wantCode: "4.3.1"},
		"no enhanced code": {stage: capture.StageRcpt, answer: smtpErr(550, smtp.NoEnhancedCode, "No such user here"),
			want: channel.Permanent, wantCode: "550", wantErr: "smtp RCPT TO: 550 No such user here"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, relayOptions{})
			r.failOnce(tt.stage, tt.answer)
			p := newProvider(t, r.url("smtp", ""))
			res := send(t, p, message("refused"))
			require.Equal(t, tt.want, res.Outcome, "%v", res.Err)
			require.Equal(t, tt.wantCode, res.ErrorCode)
			require.Equal(t, tt.undeliverable, res.Undeliverable)
			require.Error(t, res.Err)
			if tt.wantErr != "" {
				require.Equal(t, tt.wantErr, res.Err.Error())
			}
			require.NotContains(t, res.Err.Error(), "1042", "the body never reaches an error")
			require.Equal(t, 0, r.Count("refused"))

			// The session was reset (or replaced, after 421) and the next send goes through.
			res = send(t, p, message("next"))
			require.NoError(t, res.Err)
			require.Equal(t, 1, r.Count("next"))
			wantSessions := 1
			if tt.answer.(*smtp.SMTPError).Code == 421 {
				wantSessions = 2
			}
			require.Equal(t, wantSessions, r.Connections())
		})
	}
}

// A relay that dies mid-DATA leaves the send transient; the broken session is not reused and
// the next attempt delivers on a new one.
func TestDroppedMidDataThenRetried(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{})
	r.failOnce(capture.StageData, capture.ErrDrop)
	p := newProvider(t, r.url("smtp", ""))
	m := message("dropped-1")
	res := send(t, p, m)
	require.Equal(t, channel.Transient, res.Outcome, "%v", res.Err)
	require.Empty(t, res.ErrorCode)
	require.Contains(t, res.Err.Error(), "smtp end of DATA: ")
	require.False(t, res.Undeliverable)
	require.Equal(t, 0, r.Count("dropped-1"))

	m.Attempt++
	res = send(t, p, m)
	require.NoError(t, res.Err)
	require.Equal(t, channel.Delivered, res.Outcome)
	require.Equal(t, 1, r.Count("dropped-1"))
	require.Equal(t, 2, r.Connections())
	require.Equal(t, "3", r.Mails()[0].Header.Get("X-Pulse-Attempt"))
}

// A pooled session that the relay closed while it was idle is replaced without failing the
// send: the relay cannot have seen the message.
func TestDeadPooledSessionIsReplaced(t *testing.T) {
	t.Parallel()
	tests := map[string]error{
		"dropped silently":      capture.ErrDrop,
		"closed with a timeout": smtpErr(421, smtp.EnhancedCode{4, 4, 2}, "Error: timeout exceeded"),
	}
	for name, answer := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, relayOptions{})
			p := newProvider(t, r.url("smtp", ""))
			require.NoError(t, send(t, p, message("before")).Err)

			r.failOnce(capture.StageMail, answer)
			res := send(t, p, message("after"))
			require.NoError(t, res.Err)
			require.Equal(t, channel.Delivered, res.Outcome)
			require.Equal(t, 1, r.Count("after"))
			require.Equal(t, 2, r.Connections())
		})
	}
}

func TestSessionsAreReused(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{})
	p := newProvider(t, r.url("smtp", "pool=2"))
	for i := range 5 {
		require.NoError(t, send(t, p, message(fmt.Sprint("seq-", i))).Err)
	}
	require.Equal(t, 1, r.Connections(), "sequential sends share one session")

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			res := send(t, p, message(fmt.Sprint("par-", i)))
			if res.Err != nil {
				t.Errorf("send %d: %v", i, res.Err)
			}
		})
	}
	wg.Wait()
	require.Len(t, r.Mails(), 25)
	require.LessOrEqual(t, r.Connections(), 2, "pool=2 bounds the sessions")
}

func TestIdleSessionIsReplaced(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{})
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	p := newProvider(t, r.url("smtp", "idle=1m"), email.WithClock(clock))
	require.NoError(t, send(t, p, message("idle-1")).Err)
	mu.Lock()
	now = now.Add(59 * time.Second)
	mu.Unlock()
	require.NoError(t, send(t, p, message("idle-2")).Err)
	require.Equal(t, 1, r.Connections(), "a session idle for less than idle is reused")
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	require.NoError(t, send(t, p, message("idle-3")).Err)
	require.Equal(t, 2, r.Connections(), "a session idle for idle or longer is replaced")
}

func TestSessionFailuresAreTransient(t *testing.T) {
	t.Parallel()
	refusedAddr := pulsetest.FreeAddr(t)

	tests := map[string]struct {
		relay    relayOptions
		url      func(r *relay) string
		wantCode string
		wantErr  string
	}{
		"wrong password": {
			url: func(r *relay) string {
				return accountURL("smtp", url.UserPassword(testUser, "wrong-"+testPassword), r.addr, r.cert.caFile, "")
			},
			wantCode: "5.7.8", wantErr: "535 5.7.8 Authentication failed",
		},
		"connection refused": {
			url:     func(r *relay) string { return accountURL("smtp", nil, refusedAddr, r.cert.caFile, "") },
			wantErr: "connection refused",
		},
		"STARTTLS required but not offered": {
			relay:   relayOptions{noTLS: true, noAuth: true},
			url:     func(r *relay) string { return accountURL("smtp", nil, r.addr, "", "") },
			wantErr: "does not support STARTTLS",
		},
		"certificate not trusted": {
			url: func(r *relay) string {
				return accountURL("smtp", url.UserPassword(testUser, testPassword), r.addr, "", "")
			},
			wantErr: "TLS certificate not trusted",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, tt.relay)
			p := newProvider(t, tt.url(r))
			res := send(t, p, message("session"))
			require.Equal(t, channel.Transient, res.Outcome, "%v", res.Err)
			require.Equal(t, tt.wantCode, res.ErrorCode)
			require.ErrorContains(t, res.Err, "smtp open SMTP session: ")
			require.ErrorContains(t, res.Err, tt.wantErr)
			require.NotContains(t, res.Err.Error(), "p@ss")
			require.Equal(t, 0, r.Count("session"))
		})
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{})
	cfg, err := email.ParseURL(r.url("smtp", ""))
	require.NoError(t, err)
	p, err := email.New(cfg)
	require.NoError(t, err)
	require.NoError(t, send(t, p, message("open")).Err)
	require.NoError(t, p.Close())
	res := send(t, p, message("closed"))
	require.Equal(t, channel.Transient, res.Outcome)
	require.ErrorIs(t, res.Err, email.ErrClosed)
	require.NoError(t, p.Close(), "Close twice")
}

func TestSendRespectsContext(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{})
	release := make(chan struct{})
	r.onStage(func(stage, _ string) error {
		if stage == capture.StageRcpt {
			<-release
		}
		return nil
	})
	t.Cleanup(func() { close(release) })
	p := newProvider(t, r.url("smtp", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := p.Send(ctx, message("slow"))
	require.Equal(t, channel.Transient, res.Outcome)
	require.ErrorContains(t, res.Err, "smtp RCPT TO: timed out")
}

// A relay that accepts the connection but never greets holds a send no longer than its
// context allows.
func TestSilentRelayTimesOut(t *testing.T) {
	t.Parallel()
	l := pulsetest.Listen(t)
	var held sync.WaitGroup
	t.Cleanup(func() {
		require.NoError(t, l.Close())
		held.Wait()
	})
	held.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held.Go(func() {
				_, _ = c.Read(make([]byte, 1)) // until the client gives up
				_ = c.Close()
			})
		}
	})
	p := newProvider(t, accountURL("smtp", nil, l.Addr().String(), "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	started := time.Now()
	res := p.Send(ctx, message("silent"))
	require.Less(t, time.Since(started), 5*time.Second)
	require.Equal(t, channel.Transient, res.Outcome)
	require.EqualError(t, res.Err, "smtp open SMTP session: timed out")
}

func TestTLSModes(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		relay   relayOptions
		user    bool
		param   string
		wantErr string
	}{
		// The relay offers AUTH only over TLS, so a delivery with AUTH proves STARTTLS ran.
		"opportunistic upgrades when offered":               {relay: relayOptions{}, user: true, param: "tls=opportunistic"},
		"opportunistic sends in the clear when not offered": {relay: relayOptions{noTLS: true, noAuth: true}, param: "tls=opportunistic"},
		"none": {relay: relayOptions{noTLS: true, noAuth: true}, param: "tls=none"},
		"explicit LOGIN is refused by a PLAIN-only relay": {relay: relayOptions{}, user: true, param: "auth=login",
			wantErr: "smtp open SMTP session: server does not support SMTP AUTH type: LOGIN"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, tt.relay)
			var user *url.Userinfo
			if tt.user {
				user = url.UserPassword(testUser, testPassword)
			}
			p := newProvider(t, accountURL("smtp", user, r.addr, r.cert.caFile, tt.param))
			res := send(t, p, message("mode"))
			if tt.wantErr != "" {
				require.Equal(t, channel.Transient, res.Outcome)
				require.EqualError(t, res.Err, tt.wantErr)
				require.Equal(t, 0, r.Count("mode"))
				return
			}
			require.NoError(t, res.Err)
			require.Equal(t, 1, r.Count("mode"))
		})
	}
}
