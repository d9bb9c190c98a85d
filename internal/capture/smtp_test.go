package capture

import (
	"fmt"
	"net"
	"net/smtp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
)

// serveSMTP serves a capture with cfg on a free port until the test ends.
func serveSMTP(t *testing.T, cfg SMTPConfig) (*SMTP, net.Listener) {
	t.Helper()
	s := NewSMTP(cfg)
	l := pulsetest.Listen(t)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.NoError(t, <-done)
	})
	return s, l
}

func TestSMTPPrintsEachMessage(t *testing.T) {
	t.Parallel()
	out := &pulsetest.SyncBuffer{}
	s, l := serveSMTP(t, SMTPConfig{Out: out})

	msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: =?UTF-8?q?Caf=C3=A9?=\r\nX-Pulse-Notification-Id: n-1\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsecret body=3D1\r\n"
	require.NoError(t, smtp.SendMail(l.Addr().String(), nil, "a@example.com", []string{"b@example.org"}, []byte(msg)))

	<-s.Received()
	require.Equal(t, 1, s.Count("n-1"))
	require.Equal(t, 1, s.Connections())
	m := s.Mails()[0]
	require.Equal(t, "Café", m.Header.Get("Subject"))
	require.Equal(t, "secret body=1\r\n", m.Text)
	require.Equal(t, fmt.Sprintf("email received: to=b@example.org subject=%q notification=n-1, %d bytes (text 15, html 0)\n", "Café", len(msg)), out.String())
	require.NotContains(t, out.String(), "secret body", "bodies are not printed")
}

// TestSMTPStats: each message with a notification id counts, each id once among the
// distinct, and a message without one apart.
func TestSMTPStats(t *testing.T) {
	t.Parallel()
	s, l := serveSMTP(t, SMTPConfig{})
	for _, id := range []string{"n-1", "n-2", "n-1", ""} {
		msg := "Subject: s\r\n"
		if id != "" {
			msg += "X-Pulse-Notification-Id: " + id + "\r\n"
		}
		require.NoError(t, smtp.SendMail(l.Addr().String(), nil, "a@example.com", []string{"b@example.org"}, []byte(msg+"\r\nbody\r\n")))
	}
	total, distinct, anonymous := s.Stats()
	require.Equal(t, []int{3, 2, 1}, []int{total, distinct, anonymous}, "total, distinct, anonymous")
	require.Equal(t, 2, s.Count("n-1"))
}

// FuzzParseMail feeds the capture's MIME reader arbitrary messages: it never panics.
func FuzzParseMail(f *testing.F) {
	for _, seed := range []string{
		"Subject: hi\r\n\r\nbody\r\n",
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ntext\r\n--b\r\n" +
			"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+aHRtbDwvcD4=\r\n--b--\r\n",
		"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: multipart/alternative; boundary=y\r\n\r\n--y\r\n\r\nnested\r\n--y--\r\n--x--\r\n",
		"Content-Type: text/plain; charset=\r\n\r\n",
		"no header at all",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseMail(raw)
		if err == nil {
			require.LessOrEqual(t, len(m.Text)+len(m.HTML), len(raw)*2)
		}
	})
}
