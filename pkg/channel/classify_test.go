package channel

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestTransportResult(t *testing.T) {
	t.Parallel()

	const secretURL = "https://user:pw@example.com/hook?token=SECRET"
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: secretURL, Err: err}
	}
	dial := func(err error) error {
		return wrap(&net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	tests := map[string]struct {
		err  error
		want Outcome
	}{
		"timeout":               {wrap(context.DeadlineExceeded), Transient},
		"cancelled":             {wrap(context.Canceled), Transient},
		"connection refused":    {dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), Transient},
		"connection reset":      {wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), Transient},
		"DNS temporary failure": {dial(&net.DNSError{Err: "server misbehaving", Name: "example.com", IsTemporary: true}), Transient},
		"DNS timeout":           {dial(&net.DNSError{Err: "i/o timeout", Name: "example.com", IsTimeout: true}), Transient},
		"DNS no such host":      {dial(&net.DNSError{Err: "no such host", Name: "example.com", IsNotFound: true}), Permanent},
		"connection closed":     {wrap(errors.New("EOF")), Transient},
		"private destination": {
			dial(&destinationError{addr: netip4(10, 0, 0, 1), kind: kindPrivate}),
			Permanent,
		},
	}
	w := &Webhook{timeout: time.Second}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			got := w.transportResult(tt.err)
			require.Equal(t, tt.want, got.Outcome)
			require.Error(t, got.Err)
			require.NotContains(t, got.Err.Error(), "SECRET")
			require.NotContains(t, got.Err.Error(), "pw@")
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		value string
		want  time.Duration
	}{
		"absent":           {"", 0},
		"seconds":          {"7", 7 * time.Second},
		"zero":             {"0", 0},
		"padded":           {" 120 ", 2 * time.Minute},
		"HTTP date":        {now.Add(time.Minute).Format("Mon, 02 Jan 2006 15:04:05 GMT"), time.Minute},
		"RFC 850 date":     {"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second},
		"date in the past": {now.Add(-time.Minute).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 0},
		"negative":         {"-5", 0},
		"fraction":         {"1.5", 0},
		"garbage":          {"soon", 0},
		"beyond the cap":   {"999999999999", maxRetryAfter},
		"overflowing":      {"99999999999999999999999", maxRetryAfter},
		"date beyond cap":  {now.Add(48 * time.Hour).Format("Mon, 02 Jan 2006 15:04:05 GMT"), maxRetryAfter},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			if diff := cmp.Diff(tt.want, retryAfter(tt.value, now)); diff != "" {
				t.Errorf("retryAfter(%q) (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}
