package push

import (
	"bytes"
	"encoding/json"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// maxErrorMessage bounds how much of FCM's own message an error carries.
const maxErrorMessage = 200

// fcmErrorType is the @type of the detail that carries FCM's own error code.
const fcmErrorType = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

// apiError is what an FCM error body says: a google.rpc.Status,
//
//	{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
//	  "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
//	               "errorCode": "UNREGISTERED"}]}}
type apiError struct {
	// Status is the canonical gRPC status name, such as NOT_FOUND, "" when absent.
	Status string
	// ErrorCode is the FcmError detail's code, such as UNREGISTERED, "" when absent.
	ErrorCode string
	// Message is FCM's explanation, cut to maxErrorMessage runes, control characters removed.
	Message string
}

// Code is the most specific code the error carries: the FcmError code, else the status.
func (e apiError) Code() string {
	if e.ErrorCode != "" {
		return e.ErrorCode
	}
	return e.Status
}

// parseError reads an FCM error body. It reports false when the body is not a JSON object
// with an "error" object; members of the wrong type are ignored.
func parseError(body []byte) (apiError, bool) {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return apiError{}, false
	}
	var envelope struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &envelope) != nil {
		return apiError{}, false
	}
	var status map[string]json.RawMessage
	if json.Unmarshal(envelope.Error, &status) != nil || status == nil {
		return apiError{}, false
	}
	var e apiError
	var s string
	if json.Unmarshal(status["status"], &s) == nil {
		e.Status = codeName(s)
	}
	s = ""
	if json.Unmarshal(status["message"], &s) == nil {
		e.Message = channel.OneLine(s, maxErrorMessage)
	}
	var details []map[string]json.RawMessage
	if json.Unmarshal(status["details"], &details) == nil {
		for _, d := range details {
			var typ, code string
			if json.Unmarshal(d["@type"], &typ) != nil || typ != fcmErrorType {
				continue
			}
			if json.Unmarshal(d["errorCode"], &code) == nil && codeName(code) != "" {
				e.ErrorCode = codeName(code)
				break
			}
		}
	}
	return e, true
}

// codeName keeps s when it looks like an enum name (UNREGISTERED, QUOTA_EXCEEDED), else "".
func codeName(s string) string {
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return ""
		}
	}
	return s
}
