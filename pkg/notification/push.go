package notification

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pulse-knative/pulse/pkg/fielderr"
)

// MaxPushDataMap bounds the string map a push message carries to the app: FCM refuses
// messages whose payload exceeds 4096 bytes.
const MaxPushDataMap = 4096

// PushData is the shape of a push notification's data object:
//
//	{"data": {"order": "42"}, "android": {...}, "apns": {...}, "webpush": {...}}
//
// data is the string map handed to the app; android, apns and webpush are FCM's
// platform-specific overrides (AndroidConfig, ApnsConfig, WebpushConfig), passed through as
// they are. Every member is optional.
type PushData struct {
	// Data is the string map handed to the app.
	Data map[string]string
	// Android is FCM's AndroidConfig, a JSON object, nil when absent.
	Android json.RawMessage
	// APNS is FCM's ApnsConfig, a JSON object, nil when absent.
	APNS json.RawMessage
	// Webpush is FCM's WebpushConfig, a JSON object, nil when absent.
	Webpush json.RawMessage
}

var pushDataFields = []string{"data", "android", "apns", "webpush"}

// ParsePushData decodes and checks a push notification's data object. Errors name each bad
// field by its path below data ("data.k" for a value of the string map) and never quote
// values. Empty or null data is an empty PushData.
func ParsePushData(raw json.RawMessage) (PushData, *fielderr.Error) {
	var p PushData
	if len(bytes.TrimSpace(raw)) == 0 || isNull(raw) {
		return p, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return p, fielderr.New("must be a JSON object", fielderr.Current)
	}
	var errs *fielderr.Error
	for name, v := range members {
		if !slices.Contains(pushDataFields, name) {
			errs = errs.Also(&fielderr.Error{
				Message: "must not be set; push data takes data (a string map), android, apns and webpush",
				Paths:   []string{name},
			})
			continue
		}
		if isNull(v) {
			continue
		}
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
			errs = errs.Also(fielderr.New("must be a JSON object", name))
			continue
		}
		switch name {
		case "android":
			p.Android = v
		case "apns":
			p.APNS = v
		case "webpush":
			p.Webpush = v
		case "data":
			p.Data, errs = parsePushMap(v, errs)
		}
	}
	return p, errs
}

// parsePushMap decodes the string map of push data.
func parsePushMap(v json.RawMessage, errs *fielderr.Error) (map[string]string, *fielderr.Error) {
	var values map[string]json.RawMessage
	if err := json.Unmarshal(v, &values); err != nil {
		return nil, errs.Also(fielderr.New("must be a JSON object", "data"))
	}
	out := make(map[string]string, len(values))
	size := 0
	for k, raw := range values {
		var s string
		if err := decodeString(raw, &s); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
			errs = errs.Also(fielderr.New("must be a string", k).ViaField("data"))
			continue
		}
		if reservedPushKey(k) {
			errs = errs.Also(fielderr.New(`is reserved by FCM (from, notification, message_type and keys starting with "google" or "gcm")`, k).ViaField("data"))
			continue
		}
		out[k] = s
		size += len(k) + len(s)
	}
	if size > MaxPushDataMap {
		errs = errs.Also(fielderr.New(fmt.Sprintf("holds %d bytes of keys and values, at most %d allowed", size, MaxPushDataMap), "data"))
	}
	return out, errs
}

// reservedPushKey reports a key FCM refuses in a message's data.
func reservedPushKey(k string) bool {
	switch k {
	case "from", "notification", "message_type":
		return true
	}
	lower := strings.ToLower(k)
	return strings.HasPrefix(lower, "google") || strings.HasPrefix(lower, "gcm")
}
