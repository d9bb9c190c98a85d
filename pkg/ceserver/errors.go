package ceserver

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// Errors the HTTP layer maps to status codes; the packages that own the concepts define the
// rest (notification.ErrNotFound, store.ErrUnavailable).
var (
	// ErrUnauthorized means the request carries no valid credentials.
	ErrUnauthorized = errors.New("a valid bearer token is required")
	// ErrForbidden means the credentials do not allow what the request asks.
	ErrForbidden = errors.New("the token may not use this source")
)

// Status returns the HTTP status code for err. It is the one place Pulse maps errors to codes:
// 400 for input that can never succeed (a body that ended early included), 401/403 for
// credentials, 408 for a body not sent in time, 413 for size, 503 for a datastore that may
// come back, 500 for the rest.
func Status(err error) int {
	var fe *fielderr.Error
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest
	case errors.Is(err, ErrIncompleteBody):
		return http.StatusBadRequest
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, notification.ErrNotFound), errors.Is(err, notification.ErrSuppressionNotFound):
		return http.StatusNotFound
	case errors.Is(err, notification.ErrNotCancellable):
		return http.StatusConflict
	case isUnavailable(err):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// unavailable is implemented by errors that mean a datastore could not be reached or did not
// answer in time, so the same request may succeed if sent again (store.ErrUnavailable).
type unavailable interface {
	Unavailable() bool
}

// isUnavailable reports whether err, or an error it wraps, says a datastore is unavailable.
func isUnavailable(err error) bool {
	var u unavailable
	return errors.As(err, &u) && u.Unavailable()
}

// FieldProblem is one bad field of a 400 answer.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error  string         `json:"error"`
	Fields []FieldProblem `json:"fields,omitempty"`
}

// WriteError answers err with its status code and a JSON body. Errors that are Pulse's own
// fault (500) are logged and not shown to the caller beyond a generic message.
func WriteError(w http.ResponseWriter, logger *slog.Logger, err error) {
	code := Status(err)
	body := ErrorBody{Error: err.Error()}
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		body.Error = "invalid request"
		for _, e := range fe.WrappedErrors() {
			for _, p := range e.Paths {
				body.Fields = append(body.Fields, FieldProblem{Field: p, Message: e.Message, Details: e.Details})
			}
		}
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBodyTimeout) || errors.Is(err, ErrIncompleteBody) {
		// What is left of the body is unread. Closing the connection answers at once;
		// otherwise net/http reads the rest first to reuse the connection, which for a
		// body declared too large or sent too slowly is what the answer means to avoid.
		w.Header().Set("Connection", "close")
	}
	switch code {
	case http.StatusInternalServerError:
		logger.Error("request failed", "error", err)
		body.Error = "internal error"
	case http.StatusServiceUnavailable:
		logger.Warn("datastore unavailable", "error", err)
		body.Error = "temporarily unavailable, try again"
		w.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="pulse"`)
	}
	WriteJSON(w, code, body)
}

// WriteJSON answers v as JSON with code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
