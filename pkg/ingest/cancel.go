package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// CancelAnswer says what a request to cancel a notification came to.
type CancelAnswer struct {
	ID      string              `json:"id"`
	Source  string              `json:"source"`
	EventID string              `json:"event_id"`
	Status  notification.Status `json:"status"`
	// Cancelled is true when this request cancelled the notification.
	Cancelled bool `json:"cancelled"`
	// Message says what happened, or why nothing did.
	Message string `json:"message"`
	// Error is set, like every error answer's, when the notification could not be cancelled.
	Error string `json:"error,omitempty"`
}

// cancelHTTP answers DELETE on the status API: 200 once cancelled, 409 with the notification's
// state when it has finished or is being sent, 404 when there is none the caller may see.
func (h *Handler) cancelHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := h.visible(r)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	answer, err := h.cancel(r.Context(), n)
	switch {
	case errors.Is(err, notification.ErrNotCancellable):
		ceserver.WriteJSON(w, ceserver.Status(err), answer)
	case err != nil:
		ceserver.WriteError(w, h.logger, err)
	default:
		ceserver.WriteJSON(w, http.StatusOK, answer)
	}
}

// cancelEvent answers a dev.pulse.notification.cancel event, whose source and id are those of
// the request to cancel: 200 whether or not the notification could still be cancelled, since
// Knative retries a 409 and retrying cannot change a finished notification; the body says
// which. A request that is not stored yet gets 404, which Knative retries: the cancel may have
// overtaken its request.
func (h *Handler) cancelEvent(w http.ResponseWriter, r *http.Request, token string, e event.Event) {
	logger := h.logger.With("ce_id", e.ID(), "ce_source", e.Source())
	if errs := notification.ValidateEventKey(e.Source(), e.ID()); errs != nil {
		ceserver.WriteError(w, logger, errs)
		return
	}
	if !h.allows(token, e.Source()) {
		ceserver.WriteError(w, logger, fmt.Errorf("%w: source %q", ceserver.ErrForbidden, e.Source()))
		return
	}
	n, err := h.store.GetByEvent(r.Context(), e.Source(), e.ID())
	if err != nil {
		ceserver.WriteError(w, logger, err)
		return
	}
	answer, err := h.cancel(r.Context(), n)
	if err != nil && !errors.Is(err, notification.ErrNotCancellable) {
		ceserver.WriteError(w, logger.With("notification_id", n.ID), err)
		return
	}
	ceserver.WriteJSON(w, http.StatusOK, answer)
}

// cancel cancels n. Besides failures, it returns an error wrapping notification.ErrNotCancellable,
// with an answer that says why, when n can no longer be cancelled.
func (h *Handler) cancel(ctx context.Context, n notification.Notification) (CancelAnswer, error) {
	got, err := h.store.Cancel(ctx, n.ID)
	if err != nil && !errors.Is(err, notification.ErrNotCancellable) {
		return CancelAnswer{}, err
	}
	a := CancelAnswer{ID: got.ID, Source: got.Source, EventID: got.EventID, Status: got.Status}
	switch {
	case err == nil:
		a.Cancelled, a.Message = true, "cancelled"
		h.logger.Info("notification cancelled", "notification_id", got.ID, "ce_source", got.Source, "ce_id", got.EventID)
	case got.Status == notification.Sending:
		a.Message = "not cancelled: it is being sent right now; if this attempt fails it returns to retrying and can be cancelled then"
		a.Error = err.Error()
	default:
		a.Message = fmt.Sprintf("not cancelled: it has already finished (%s)", got.Status)
		a.Error = err.Error()
	}
	return a, err
}
