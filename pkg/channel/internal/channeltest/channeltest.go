package channeltest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// Provider parses the account URL raw, builds its provider with a clock stopped at now, and
// closes the provider when the test ends.
func Provider[C any, P io.Closer](t *testing.T, parse func(string) (C, error), build func(C, ...channel.APIOption) (P, error),
	raw string, now time.Time) P {
	t.Helper()
	cfg, err := parse(raw)
	require.NoError(t, err)
	p, err := build(cfg, channel.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// Answer answers every request with status, the header fields in header, a Content-Type of
// contentType (none when empty) and body.
func Answer(status int, contentType string, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// URLCase is an account URL and what parsing it must give: Want, or else an error that
// contains WantErr.
type URLCase[C any] struct {
	Raw     string
	Want    C
	WantErr string
}

// CheckParseURL runs each case through parse as a parallel subtest. An error must contain
// the case's WantErr and quote neither secret nor the URL.
func CheckParseURL[C any](t *testing.T, parse func(string) (C, error), secret string, cases map[string]URLCase[C]) {
	t.Helper()
	for name, tt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := parse(tt.Raw)
			if tt.WantErr != "" {
				require.ErrorContains(t, err, tt.WantErr)
				require.NotContains(t, err.Error(), secret)
				require.NotContains(t, err.Error(), tt.Raw)
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.Want, got), "(-want +got)")
		})
	}
}

// ErrorBody is the body of a provider's error answer and what its error parser must make of
// it: Want, and WantOK when the body has the provider's error shape at all.
type ErrorBody[E any] struct {
	Body   string
	Want   E
	WantOK bool
}

// CheckErrorParser runs each case through parse as a parallel subtest.
func CheckErrorParser[E any](t *testing.T, parse func([]byte) (E, bool), cases map[string]ErrorBody[E]) {
	t.Helper()
	for name, tt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, ok := parse([]byte(tt.Body))
			require.Equal(t, tt.WantOK, ok)
			require.Empty(t, cmp.Diff(tt.Want, got), "(-want +got)")
		})
	}
}

// FuzzErrorParser fuzzes parse from seeds: a body it does not recognise must give the zero
// error, and check must hold for every other. Neither may panic.
func FuzzErrorParser[E any](f *testing.F, parse func([]byte) (E, bool), seeds []string, check func(t *testing.T, e E)) {
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, ok := parse(body)
		if !ok {
			require.Zero(t, e)
			return
		}
		check(t, e)
	})
}

// RequireOneLine fails t unless s fits on one line of an error, as channel.OneLine(…, max)
// makes it: no control characters, and at most max runes and an ellipsis.
func RequireOneLine(t *testing.T, s string, max int) {
	t.Helper()
	require.LessOrEqual(t, len([]rune(s)), max+1)
	require.False(t, strings.ContainsFunc(s, unicode.IsControl), "%q has control characters", s)
}
