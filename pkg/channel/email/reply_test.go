package email

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/channel"
)

func TestParseReply(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		code int
		text string
		want reply
	}{
		"postfix unknown user": {code: 550, text: "5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
			want: reply{Code: 550, Enhanced: "5.1.1", Text: "<bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table"}},
		"exchange": {code: 550, text: "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
			want: reply{Code: 550, Enhanced: "5.1.10", Text: "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"}},
		"multiline keeps the first line": {code: 450, text: "4.2.1 The user you are trying to contact is receiving mail too quickly.\n4.2.1 Please resend later.",
			want: reply{Code: 450, Enhanced: "4.2.1", Text: "The user you are trying to contact is receiving mail too quickly."}},
		"no enhanced code": {code: 554, text: "Transaction failed",
			want: reply{Code: 554, Text: "Transaction failed"}},
		"class disagrees with the code": {code: 550, text: "4.1.1 odd",
			want: reply{Code: 550, Text: "4.1.1 odd"}},
		"too many digits": {code: 550, text: "5.1000.1 odd",
			want: reply{Code: 550, Text: "5.1000.1 odd"}},
		"only the code": {code: 421, text: "",
			want: reply{Code: 421}},
		"enhanced code alone": {code: 421, text: "4.3.2",
			want: reply{Code: 421, Enhanced: "4.3.2"}},
		"control characters dropped": {code: 550, text: "5.7.1 bad\x00\x1b[31m words\r",
			want: reply{Code: 550, Enhanced: "5.7.1", Text: "bad[31m words"}},
		"long text cut": {code: 550, text: "5.7.1 " + strings.Repeat("x", 300),
			want: reply{Code: 550, Enhanced: "5.7.1", Text: strings.Repeat("x", maxReplyText) + "…"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, parseReply(tt.code, tt.text)); diff != "" {
				t.Errorf("parseReply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	type want struct {
		Outcome       channel.Outcome
		ErrorCode     string
		Undeliverable bool
		Err           string
	}
	refused := &textproto.Error{Code: 550, Msg: "5.1.1 User unknown"}
	tests := map[string]struct {
		err  error
		want want
	}{
		"dial":              {err: errors.New("dial tcp 127.0.0.1:25: connect: connection refused"), want: want{channel.Transient, "", false, "smtp open SMTP session: dial tcp 127.0.0.1:25: connect: connection refused"}},
		"auth refused":      {err: &sendError{stage: stageSession, reply: parseReply(535, "5.7.8 Authentication failed")}, want: want{channel.Transient, "5.7.8", false, "smtp open SMTP session: 535 5.7.8 Authentication failed"}},
		"unknown recipient": {err: &sendError{stage: stageRcpt, reply: parseReply(refused.Code, refused.Msg), err: refused}, want: want{channel.Permanent, "5.1.1", true, "smtp RCPT TO: 550 5.1.1 User unknown"}},
		"unknown sender":    {err: &sendError{stage: stageMail, reply: parseReply(refused.Code, refused.Msg), err: refused}, want: want{channel.Permanent, "5.1.1", false, "smtp MAIL FROM: 550 5.1.1 User unknown"}},
		"bad domain":        {err: &sendError{stage: stageRcpt, reply: parseReply(550, "5.1.2 Host unknown")}, want: want{channel.Permanent, "5.1.2", true, "smtp RCPT TO: 550 5.1.2 Host unknown"}},
		"moved":             {err: &sendError{stage: stageRcpt, reply: parseReply(551, "5.1.6 Mailbox has moved")}, want: want{channel.Permanent, "5.1.6", true, "smtp RCPT TO: 551 5.1.6 Mailbox has moved"}},
		"temporary":         {err: &sendError{stage: stageRcpt, reply: parseReply(450, "4.1.1 Recipient address verification pending")}, want: want{channel.Transient, "4.1.1", false, "smtp RCPT TO: 450 4.1.1 Recipient address verification pending"}},
		"no reply mid-data": {err: &sendError{stage: stageEnd, err: errors.New("EOF")}, want: want{channel.Transient, "", false, "smtp end of DATA: EOF"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := classify(tt.err)
			got := want{res.Outcome, res.ErrorCode, res.Undeliverable, res.Err.Error()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("classify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	require.Equal(t, "019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55@example.com", MessageID("019ac3e1-7c9a-7b40-9d43-2f1c8e6b1a55", "example.com"))
	require.Equal(t, "3c3e40@example.com", MessageID("<>@", "example.com"), "unsafe ids are hex-encoded")
}

// FuzzParseReply feeds parseReply what relays might answer: it never panics, keeps an
// enhanced code only when well-formed and of the reply's class, and returns text fit for an
// error message.
func FuzzParseReply(f *testing.F) {
	for _, seed := range []struct {
		code int
		text string
	}{
		{550, "5.1.1 <bob@example.org>: Recipient address rejected: User unknown"},
		{450, "4.2.1 Try later\n4.2.1 really"},
		{421, "4.7.0 Too many connections"},
		{250, "2.0.0 Ok: queued as 4ABC123"},
		{554, ""},
		{550, "5.1.10 RESOLVER.ADR.RecipientNotFound"},
		{550, "5..1 broken"},
		{999, "9.9.9 nonsense"},
		{-1, "\xff\xfe 5.1.1"},
	} {
		f.Add(seed.code, seed.text)
	}
	f.Fuzz(func(t *testing.T, code int, text string) {
		r := parseReply(code, text)
		require.Equal(t, code, r.Code)
		if r.Enhanced != "" {
			require.True(t, isEnhanced(r.Enhanced), r.Enhanced)
			require.Equal(t, fmt.Sprint(code/100), r.Enhanced[:1])
		}
		require.LessOrEqual(t, len([]rune(r.Text)), maxReplyText+1)
		for _, c := range r.Text {
			require.False(t, unicode.IsControl(c), "control character %q in %q", c, r.Text)
		}
		require.NotPanics(t, func() { _ = classify(&sendError{stage: stageRcpt, reply: r}) })
	})
}
