package streamsource

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// PriorityExtension is the CloudEvents extension attribute that carries the priority of the
// stream the entry came from.
const PriorityExtension = "priority"

// EventSource returns the source attribute of the events read from priority's stream.
func EventSource(priority string) string {
	return "/pulse/stream-source/" + priority
}

// NewEvent returns the dispatch event of the stream entry m read from priority's stream: its
// id is the entry's id, its data the entry's fields as a JSON object, its time the time the
// entry was added (from the id) and its subject the notification id, when that is a plain
// header value (see subject). The source sends the same event without building it.
func NewEvent(priority string, m queue.Message) (event.Event, error) {
	e := event.New()
	e.SetID(m.ID)
	e.SetType(notification.TypeDispatch)
	e.SetSource(EventSource(priority))
	e.SetExtension(PriorityExtension, priority)
	if t, ok := entryTime(m.ID); ok {
		e.SetTime(t)
	}
	if s, ok := subject(m.Fields); ok {
		e.SetSubject(s)
	}
	if err := e.SetData(event.ApplicationJSON, EncodeData(m.Fields)); err != nil {
		return event.Event{}, fmt.Errorf("build event for entry %s: %w", m.ID, err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("build event for entry %s: %w", m.ID, err)
	}
	return e, nil
}

// subject returns the subject of the event of an entry with fields: its notification id, if
// it has one that travels in an HTTP header unchanged. Any other id would have to be
// percent-encoded there, and the CloudEvents Go SDK, which the deliver function reads with,
// does not decode headers: it would see a different subject. The data holds the id anyway.
func subject(fields map[string]string) (string, bool) {
	id := fields[queue.FieldNotificationID]
	return id, id != "" && plainHeaderValue(id)
}

// plainHeaderValue reports whether s is the same percent-encoded as a CloudEvents header
// value: printable ASCII without space, '"' and '%'.
func plainHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainHeaderByte(s[i]) {
			return false
		}
	}
	return true
}

func plainHeaderByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != '%'
}

// headerValue returns s as the value of a ce- header in binary mode: its UTF-8 bytes, those
// outside printable ASCII and space, '"' and '%' percent-encoded (CloudEvents HTTP protocol
// binding, 3.1.3.2).
func headerValue(s string) string {
	if plainHeaderValue(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, 3*len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; plainHeaderByte(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return string(b)
}

// EncodeData encodes the fields of a stream entry as the event's data, a JSON object of
// strings, byte for byte as json.Marshal does: keys in order, bytes that are not UTF-8 as
// U+FFFD, control characters, <, >, &, U+2028 and U+2029 escaped.
func EncodeData(fields map[string]string) []byte {
	var array [8]string
	keys := array[:0]
	n := 2
	for k, v := range fields {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	data := make([]byte, 0, n)
	data = append(data, '{')
	for i, k := range keys {
		if i > 0 {
			data = append(data, ',')
		}
		data = appendJSONString(data, k)
		data = append(data, ':')
		data = appendJSONString(data, fields[k])
	}
	return append(data, '}')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json escapes with HTML
// escaping on, its default.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript: encoding/json escapes them.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// entryTime returns the time a stream entry was added: its id is "<unix ms>-<sequence>".
func entryTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}
