package notification

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// hidden stands for the part of an address MaskRecipient leaves out.
const hidden = "***"

// MaskRecipient returns as much of a recipient address as an operator needs to tell
// notifications apart and no more, for pages and listings that must not show whole addresses:
//
//	email    a***@example.com           the local part's first character and the domain
//	sms      +1555***1234               the country and area code and the last four digits
//	webhook  https://hooks.example.com  scheme and host only: the path and query often carry a token
//	push     dGhpcy***                  the first six characters of the device token
//
// Anything it cannot read as an address of its channel becomes "***".
func MaskRecipient(ch Channel, to string) string {
	switch ch {
	case Email:
		local, domain, ok := strings.Cut(to, "@")
		if !ok || local == "" || domain == "" {
			return hidden
		}
		first, _ := utf8.DecodeRuneInString(local)
		return string(first) + hidden + "@" + domain
	case SMS:
		// E.164 numbers are ASCII, so byte offsets are characters.
		if len(to) < 10 || strings.ContainsFunc(to, func(r rune) bool { return r >= utf8.RuneSelf }) {
			return hidden
		}
		return to[:5] + hidden + to[len(to)-4:]
	case Webhook:
		u, err := url.Parse(to)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return hidden
		}
		return u.Scheme + "://" + u.Host
	case Push:
		if utf8.RuneCountInString(to) < 12 {
			return hidden
		}
		return string([]rune(to)[:6]) + hidden
	}
	return hidden
}
