package sms

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// maxErrorMessage bounds how much of Twilio's own message an error carries.
const maxErrorMessage = 200

// apiError is the JSON body Twilio answers a failed request with:
//
//	{"code": 21211, "message": "The 'To' number is not a valid phone number.",
//	 "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
type apiError struct {
	// Code is Twilio's error code, 0 when the body carried none.
	Code int
	// Message is Twilio's explanation, cut to maxErrorMessage runes, control characters
	// removed.
	Message string
	// MoreInfo is the link to the error's documentation, when it is an http(s) URL.
	MoreInfo string
}

// parseError reads a Twilio error body. It reports false when the body is not a JSON object;
// fields of the wrong type are ignored rather than failing the whole body, since a
// Twilio-compatible provider may differ in detail (a code as a string, say).
func parseError(body []byte) (apiError, bool) {
	var raw struct {
		Code     json.RawMessage `json:"code"`
		Message  json.RawMessage `json:"message"`
		MoreInfo json.RawMessage `json:"more_info"`
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return apiError{}, false
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return apiError{}, false
	}
	var e apiError
	var code any
	if json.Unmarshal(raw.Code, &code) == nil {
		switch c := code.(type) {
		case float64:
			if c > 0 && c < 1e9 && c == float64(int(c)) {
				e.Code = int(c)
			}
		case string:
			if n, err := strconv.Atoi(c); err == nil && n > 0 && n < 1e9 {
				e.Code = n
			}
		}
	}
	var s string
	if json.Unmarshal(raw.Message, &s) == nil {
		e.Message = channel.OneLine(s, maxErrorMessage)
	}
	s = ""
	if json.Unmarshal(raw.MoreInfo, &s) == nil && (strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) {
		e.MoreInfo = channel.OneLine(s, maxErrorMessage)
	}
	return e, true
}
