package channel

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// OneLine makes a provider's text fit on one line of an error or an id column: control and
// invalid characters dropped, spaces trimmed, at most max runes (an ellipsis marks a cut).
func OneLine(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// IsHTTPURL reports whether s is an absolute http or https URL without credentials, as an
// account's API base or callback must be.
func IsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// StatusLine names an HTTP status as "404 Not Found", or by its number alone when it has no
// standard text.
func StatusLine(code int) string {
	return strings.TrimSpace(strconv.Itoa(code) + " " + http.StatusText(code))
}
