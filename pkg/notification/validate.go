package notification

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pulse-knative/pulse/pkg/fielderr"
)

// Limits on a request's fields. They keep one request from filling a provider's quota or the
// table, and match what the providers accept.
const (
	MaxEmailAddress   = 254
	MaxURL            = 2048
	MaxDeviceToken    = 4096
	MaxSubject        = 998
	MaxEmailBody      = 256 << 10
	MaxSMSBody        = 1600 // characters, as Twilio counts them
	MaxPushBody       = 4 << 10
	MaxPushData       = 4 << 10
	MaxWebhookPayload = 256 << 10
	MaxMetadataKeys   = 32
	MaxMetadataKey    = 64
	MaxMetadataValue  = 512
	MaxAttemptsLimit  = 25
	// MaxScheduleAhead bounds how far ahead of now send_at and expires_at may be: a year
	// covers every reminder upstreams schedule, and a send in year 9999 is a mistake.
	MaxScheduleAhead = 365 * 24 * time.Hour
)

var (
	e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

	requestFields = []string{"channel", "to", "subject", "body", "html", "data", "priority", "send_at", "expires_at", "max_attempts", "metadata"}
)

// Bounds of the CloudEvent attributes that identify a request; they form a unique key.
const (
	MaxSource  = 1024
	MaxEventID = 512
)

// ValidateEventKey checks a request's CloudEvent source and id, which Pulse stores and looks
// requests up by.
func ValidateEventKey(source, id string) *fielderr.Error {
	var errs *fielderr.Error
	for _, a := range []struct {
		name, value string
		max         int
	}{{"source", source, MaxSource}, {"id", id, MaxEventID}} {
		switch {
		case a.value == "":
			errs = errs.Also(fielderr.Missing(a.name))
		case len(a.value) > a.max:
			errs = errs.Also(tooLong(len(a.value), a.max).ViaField(a.name))
		case strings.ContainsRune(a.value, 0) || !utf8.ValidString(a.value):
			errs = errs.Also(fielderr.New("must be UTF-8 without NUL characters", a.name))
		}
	}
	return errs
}

// ParseRequest decodes and validates the JSON data of a dev.pulse.notification.requested event.
// Every bad field is reported, by its path below data; now is the time expires_at is checked
// against.
func ParseRequest(data []byte, now time.Time) (Request, *fielderr.Error) {
	var req Request
	raw, ok := objectMembers(data)
	if !ok {
		return req, fielderr.New("must be a JSON object", fielderr.Current)
	}
	var errs *fielderr.Error
	for name := range raw {
		if !slices.Contains(requestFields, name) {
			errs = errs.Also(fielderr.Disallowed(name))
		}
	}
	str := func(name string, dst *string) {
		if v, ok := raw[name]; ok && !isNull(v) {
			if err := decodeString(v, dst); err != nil {
				errs = errs.Also(fielderr.New("must be a string", name))
			} else if ferr := ValidateJSONB(v, name); ferr != nil {
				// Stored as text, which holds neither NUL nor invalid UTF-8; the decoder would
				// quietly turn the latter into U+FFFD.
				errs = errs.Also(ferr)
			}
		}
	}
	var channel, priority, sendAt, expiresAt string
	str("channel", &channel)
	str("to", &req.To)
	str("subject", &req.Subject)
	str("body", &req.Body)
	str("html", &req.HTML)
	str("priority", &priority)
	str("send_at", &sendAt)
	str("expires_at", &expiresAt)
	req.Channel, req.Priority = Channel(channel), Priority(priority)
	if v, ok := raw["data"]; ok && !isNull(v) {
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
			errs = errs.Also(fielderr.New("must be a JSON object", "data"))
		} else {
			errs = errs.Also(ValidateJSONB(v, "data"))
		}
		// Kept even when invalid, so the channel checks see that data was given.
		req.Data = v
	}
	if v, ok := raw["max_attempts"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &req.MaxAttempts); err != nil {
			errs = errs.Also(fielderr.New("must be a whole number", "max_attempts"))
		} else if req.MaxAttempts < 1 || req.MaxAttempts > MaxAttemptsLimit {
			errs = errs.Also(fielderr.OutOfBounds(req.MaxAttempts, 1, MaxAttemptsLimit, "max_attempts"))
		}
	}
	if v, ok := raw["metadata"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &req.Metadata); err != nil {
			errs = errs.Also(fielderr.New("must be an object of strings", "metadata"))
		} else {
			errs = errs.Also(validateMetadata(req.Metadata), ValidateJSONB(v, "metadata"))
		}
	}
	req.SendAt, errs = parseTime(sendAt, "send_at", errs)
	req.ExpiresAt, errs = parseTime(expiresAt, "expires_at", errs)

	switch req.Priority {
	case "":
		req.Priority = High
	case High, Low:
	default:
		errs = errs.Also(fielderr.InvalidValue(priority, "priority", "want high or low"))
	}
	latest := now.Add(MaxScheduleAhead)
	if req.SendAt != nil && req.SendAt.After(latest) {
		errs = errs.Also(fielderr.InvalidValue(sendAt, "send_at", "must be at most 365 days ahead"))
	}
	if req.ExpiresAt != nil && req.ExpiresAt.After(latest) {
		errs = errs.Also(fielderr.InvalidValue(expiresAt, "expires_at", "must be at most 365 days ahead"))
	} else if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(now) {
			errs = errs.Also(fielderr.InvalidValue(expiresAt, "expires_at", "is already past"))
		} else if req.SendAt != nil && !req.ExpiresAt.After(*req.SendAt) {
			errs = errs.Also(fielderr.InvalidValue(expiresAt, "expires_at", "must be after send_at"))
		}
	}
	return req, errs.Also(validateChannel(req, channel))
}

// objectMembers splits a JSON object into its members as json.Unmarshal into a
// map[string]json.RawMessage does (a name given twice keeps its last value), for a third of
// its cost on ingest's hot path: json.Valid checks the document without allocating, and a
// valid document only needs splitting, not a second parse. The values share data's memory.
// ok is false when data is not one JSON object.
func objectMembers(data []byte) (members map[string]json.RawMessage, ok bool) {
	if !json.Valid(data) {
		return nil, false
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, false
	}
	members = make(map[string]json.RawMessage, len(requestFields))
	i++
	for {
		i = skipSpace(data, i)
		switch data[i] {
		case '}':
			return members, true
		case ',':
			i = skipSpace(data, i+1)
		}
		end := stringEnd(data, i)
		var name string
		if decodeString(data[i:end], &name) != nil {
			return nil, false
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = valueEnd(data, i)
		members[name] = data[i:end:end]
		i = end
	}
}

// skipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the valid JSON string that starts at i.
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just past the valid JSON value that starts at i.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	// A number, true, false or null.
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// decodeString decodes a JSON string. The document has been parsed already, so a quoted value
// with no escapes and valid UTF-8 is its own text: only the others need the decoder, which
// costs several times more on ingest's hot path.
func decodeString(v json.RawMessage, dst *string) error {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*dst = string(inner)
			return nil
		}
	}
	return json.Unmarshal(v, dst)
}

func isNull(v json.RawMessage) bool {
	return string(bytes.TrimSpace(v)) == "null"
}

func parseTime(s, field string, errs *fielderr.Error) (*time.Time, *fielderr.Error) {
	if s == "" {
		return nil, errs
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, errs.Also(fielderr.InvalidValue(s, field, "want an RFC 3339 time such as 2026-01-02T15:04:05Z"))
	}
	return &t, errs
}

func validateMetadata(m map[string]string) *fielderr.Error {
	var errs *fielderr.Error
	if len(m) > MaxMetadataKeys {
		errs = errs.Also(fielderr.New(fmt.Sprintf("has %d keys, at most %d allowed", len(m), MaxMetadataKeys), "metadata"))
	}
	for k, v := range m {
		// ValidateJSONB checks the text of keys and values as written.
		if k == "" || len(k) > MaxMetadataKey {
			errs = errs.Also(fielderr.InvalidKeyName(k, "metadata", fmt.Sprintf("keys must be 1 to %d bytes of UTF-8", MaxMetadataKey)))
		}
		if len(v) > MaxMetadataValue {
			// Named as ValidateJSONB names keys, so that every error about a value reads alike.
			errs = errs.Also(&fielderr.Error{Message: tooLong(len(v), MaxMetadataValue).Message, Paths: []string{keyPath("metadata", k)}})
		}
	}
	return errs
}

func tooLong(n, max int) *fielderr.Error {
	return &fielderr.Error{Message: fmt.Sprintf("is %d bytes long, at most %d allowed", n, max), Paths: []string{fielderr.Current}}
}

func longer(s string, max int, field string) *fielderr.Error {
	if len(s) > max {
		return tooLong(len(s), max).ViaField(field)
	}
	return nil
}

func notAllowed(req Request, fields ...string) *fielderr.Error {
	var errs *fielderr.Error
	for _, f := range fields {
		set := false
		switch f {
		case "subject":
			set = req.Subject != ""
		case "html":
			set = req.HTML != ""
		case "data":
			set = req.Data != nil
		}
		if set {
			errs = errs.Also(&fielderr.Error{Message: "is not used by channel " + string(req.Channel), Paths: []string{f}})
		}
	}
	return errs
}

func validateChannel(req Request, channel string) *fielderr.Error {
	var errs *fielderr.Error
	if req.To == "" && channel != "" {
		errs = errs.Also(fielderr.Missing("to"))
	}
	switch req.Channel {
	case "":
		return errs.Also(fielderr.Missing("channel"))
	case Email:
		if req.To != "" {
			errs = errs.Also(validateEmailAddress(req.To))
		}
		if req.Subject == "" {
			errs = errs.Also(fielderr.Missing("subject"))
		} else if strings.ContainsAny(req.Subject, "\r\n") {
			errs = errs.Also(fielderr.New("must be one line", "subject"))
		}
		if req.Body == "" && req.HTML == "" {
			errs = errs.Also(fielderr.MissingOneOf("body", "html"))
		}
		errs = errs.Also(longer(req.Subject, MaxSubject, "subject"), longer(req.Body, MaxEmailBody, "body"),
			longer(req.HTML, MaxEmailBody, "html"), notAllowed(req, "data"))
	case SMS:
		if req.To != "" && !e164.MatchString(req.To) {
			errs = errs.Also(fielderr.InvalidValue(req.To, "to", "want an E.164 phone number such as +15551234567"))
		}
		if req.Body == "" {
			errs = errs.Also(fielderr.Missing("body"))
		}
		if n := utf8.RuneCountInString(req.Body); n > MaxSMSBody {
			// Twilio counts characters, not bytes: 1600 of them, however many bytes each takes.
			errs = errs.Also(fielderr.New(fmt.Sprintf("is %d characters long, at most %d allowed", n, MaxSMSBody), "body"))
		}
		errs = errs.Also(notAllowed(req, "subject", "html", "data"))
	case Push:
		if len(req.To) > MaxDeviceToken || strings.ContainsAny(req.To, " \t\r\n") {
			errs = errs.Also(fielderr.New(fmt.Sprintf("must be a device token of at most %d bytes without spaces", MaxDeviceToken), "to"))
		}
		if req.Body == "" && req.Data == nil {
			errs = errs.Also(fielderr.MissingOneOf("body", "data"))
		}
		if t := bytes.TrimSpace(req.Data); len(t) > 0 && t[0] == '{' {
			_, perrs := ParsePushData(req.Data)
			errs = errs.Also(perrs.ViaField("data"))
		}
		errs = errs.Also(longer(req.Subject, MaxSubject, "subject"), longer(req.Body, MaxPushBody, "body"),
			longer(string(req.Data), MaxPushData, "data"), notAllowed(req, "html"))
	case Webhook:
		if req.To != "" {
			errs = errs.Also(validateWebhookURL(req.To))
		}
		if req.Body == "" && req.Data == nil {
			errs = errs.Also(fielderr.MissingOneOf("body", "data"))
		}
		errs = errs.Also(longer(req.Subject, MaxSubject, "subject"),
			longer(req.Body, MaxWebhookPayload, "body"), longer(string(req.Data), MaxWebhookPayload, "data"), notAllowed(req, "html"))
	default:
		errs = errs.Also(fielderr.InvalidValue(channel, "channel", "want email, sms, push or webhook"))
	}
	return errs
}

func validateEmailAddress(to string) *fielderr.Error {
	if len(to) > MaxEmailAddress {
		return tooLong(len(to), MaxEmailAddress).ViaField("to")
	}
	addr, err := mail.ParseAddress(to)
	if err != nil || addr.Address != to || !strings.Contains(to[strings.LastIndexByte(to, '@')+1:], ".") {
		return fielderr.InvalidValue(to, "to", "want an email address such as ada@example.com")
	}
	return nil
}

func validateWebhookURL(to string) *fielderr.Error {
	if len(to) > MaxURL {
		return tooLong(len(to), MaxURL).ViaField("to")
	}
	u, err := url.Parse(to)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		// The URL may carry credentials: name the field, not the value.
		return fielderr.New("must be an absolute http or https URL", "to")
	}
	if u.User != nil {
		// They would be stored in plain text, shown by the status API and sent as Basic auth.
		return fielderr.New("must not carry credentials (user:password@); put a token in the path or query if the receiver needs one", "to")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fielderr.New("the port must be between 1 and 65535", "to")
		}
	}
	return nil
}
