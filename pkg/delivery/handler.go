package delivery

import (
	"log/slog"
	"net/http"

	"github.com/pulse-knative/pulse/pkg/ceserver"
)

// maxDispatchBytes bounds a dispatch event; it carries a few stream fields.
const maxDispatchBytes = 64 << 10

// Handler receives dispatch events over HTTP and delivers what they name. It answers 2xx once
// the outcome is recorded (or when there was nothing to do), 400 for an event it can never
// use, and 5xx only when the outcome could not be recorded, so the source retries.
type Handler struct {
	deliverer *Deliverer
	logger    *slog.Logger
}

// NewHandler returns the deliver functions' handler.
func NewHandler(d *Deliverer, logger *slog.Logger) *Handler {
	return &Handler{deliverer: d, logger: logger}
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, ok := ceserver.ReadOneEvent(w, r, maxDispatchBytes, h.logger)
	if !ok {
		return
	}
	id, ferr := NotificationID(e)
	if ferr != nil {
		ceserver.WriteError(w, h.logger.With("ce_id", e.ID(), "ce_source", e.Source()), ferr)
		return
	}
	if err := h.deliverer.Deliver(r.Context(), id); err != nil {
		ceserver.WriteError(w, h.logger.With("ce_id", e.ID(), "notification_id", id), err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
