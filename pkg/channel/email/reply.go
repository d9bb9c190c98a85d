package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"unicode"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// reply is an SMTP server's answer to one command: the basic code (RFC 5321) and, when the
// text starts with one, the enhanced status code (RFC 3463).
type reply struct {
	// Code is the three-digit reply code, 0 when there was no reply (a network failure).
	Code int
	// Enhanced is the enhanced status code, such as "5.1.1", empty when the reply has none.
	Enhanced string
	// Text is the rest of the reply's first line, cleaned for an error message and cut short.
	Text string
}

// maxReplyText bounds the server's words that go into an error: replies can be long and
// they are recorded with every attempt.
const maxReplyText = 200

// parseReply reads the reply text of a reply with code (the text after "550 " or "550-", as
// net/textproto gives it, lines joined by "\n"). An enhanced code is taken only when it is
// well-formed and its class agrees with the basic code, as RFC 3463 requires.
func parseReply(code int, text string) reply {
	r := reply{Code: code}
	line, _, _ := strings.Cut(text, "\n")
	line = strings.TrimSpace(line)
	if word, rest, _ := strings.Cut(line, " "); isEnhanced(word) && code >= 200 && code < 600 && word[0] == byte('0'+code/100) {
		r.Enhanced, line = word, strings.TrimSpace(rest)
	}
	r.Text = cleanText(line)
	return r
}

// isEnhanced reports whether s is class.subject.detail: class 2, 4 or 5, subject and detail
// one to three digits.
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// cleanText drops control characters and cuts s to maxReplyText runes.
func cleanText(s string) string {
	var b strings.Builder
	n := 0
	for _, c := range s {
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			continue
		}
		if n == maxReplyText {
			b.WriteString("…")
			break
		}
		b.WriteRune(c)
		n++
	}
	return b.String()
}

// String is the reply as a relay's log would show it: "550 5.1.1 User unknown".
func (r reply) String() string {
	parts := []string{strconv.Itoa(r.Code)}
	if r.Enhanced != "" {
		parts = append(parts, r.Enhanced)
	}
	if r.Text != "" {
		parts = append(parts, r.Text)
	}
	return strings.Join(parts, " ")
}

// errorCode is the code recorded with the attempt: the enhanced code when there is one.
func (r reply) errorCode() string {
	if r.Enhanced != "" {
		return r.Enhanced
	}
	if r.Code != 0 {
		return strconv.Itoa(r.Code)
	}
	return ""
}

// undeliverable are the enhanced codes that say the recipient's address does not exist
// (RFC 3463 X.1.1 bad destination mailbox, X.1.2 bad destination system, X.1.6 mailbox moved
// with no forwarding address; RFC 7505 X.1.10 null MX, which Microsoft's relays also answer
// for an unknown recipient). X.1.0 "other address status" is left out: relays use it for
// policy rejections too, and a suppressed address costs a person their mail.
var undeliverable = map[string]bool{"5.1.1": true, "5.1.2": true, "5.1.6": true, "5.1.10": true}

// stage is the part of a send that failed; it decides how a failure is classified.
type stage string

const (
	// stageSession is connecting, the greeting, EHLO, STARTTLS and AUTH: a failure there says
	// nothing about the message, only about the account, so it is always transient (and lets
	// the framework fail over and open the account's breaker).
	stageSession stage = "open SMTP session"
	stageMail    stage = "MAIL FROM"
	stageRcpt    stage = "RCPT TO"
	stageData    stage = "DATA"
	// stageEnd is the reply to the message's final dot: the relay accepted or refused it.
	stageEnd stage = "end of DATA"
)

// sendError is why a send failed. Its message names the stage and quotes the relay's reply,
// never the password or the message body.
type sendError struct {
	stage stage
	reply reply
	err   error
}

func (e *sendError) Error() string {
	if e.reply.Code != 0 {
		return "smtp " + string(e.stage) + ": " + e.reply.String()
	}
	return "smtp " + string(e.stage) + ": " + describe(e.err)
}

func (e *sendError) Unwrap() error { return e.err }

// describe says what a failure without a reply was, in words that carry no secrets: net and
// TLS errors name addresses and certificates, never credentials.
func describe(err error) string {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return "TLS certificate not trusted: " + err.Error()
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timed out: " + err.Error()
	}
	return err.Error()
}

// classify turns what a send came to into a Result.
func classify(err error) channel.Result {
	var se *sendError
	if !errors.As(err, &se) {
		se = &sendError{stage: stageSession, err: err}
	}
	res := channel.Result{Outcome: channel.Transient, Err: se, ErrorCode: se.reply.errorCode()}
	if se.stage == stageSession || se.reply.Code == 0 || se.reply.Code < 500 {
		return res
	}
	res.Outcome = channel.Permanent
	if (se.stage == stageRcpt || se.stage == stageEnd) && undeliverable[se.reply.Enhanced] {
		res.Undeliverable = true
	}
	return res
}

// replyOf returns the reply an SMTP command failed with, if the server gave one.
func replyOf(err error) (reply, bool) {
	var te *textproto.Error
	if errors.As(err, &te) {
		return parseReply(te.Code, te.Msg), true
	}
	return reply{}, false
}
