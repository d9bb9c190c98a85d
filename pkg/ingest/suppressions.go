package ingest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// maxSuppressionsListed bounds one list answer.
const maxSuppressionsListed = 1000

// Suppressions is the answer of GET /v1/suppressions.
type Suppressions struct {
	Suppressions []store.Suppression `json:"suppressions"`
}

// SuppressionRemoved is the answer of DELETE /v1/suppressions/{channel}/{address}.
type SuppressionRemoved struct {
	Channel string `json:"channel"`
	Address string `json:"address"`
	Removed bool   `json:"removed"`
}

// operator checks that the caller may manage suppressions. Suppressions hold every
// source's recipients, so only a token allowed every source ("*") may see or remove them.
func (h *Handler) operator(r *http.Request) error {
	token, err := h.authorize(r)
	if err != nil || h.cfg.Auth == "none" {
		return err
	}
	if !slices.Contains(h.cfg.Tokens[token], "*") {
		return fmt.Errorf("%w: suppressions need a token allowed every source (*)", ceserver.ErrForbidden)
	}
	return nil
}

func validChannel(name, field string) *fielderr.Error {
	if slices.Contains(notification.Channels, notification.Channel(name)) {
		return nil
	}
	return fielderr.InvalidValue(name, field, "want email, sms, push or webhook")
}

// listSuppressions answers GET /v1/suppressions?channel=&address=&limit=: the newest
// suppressions first, of one channel or one address when asked.
func (h *Handler) listSuppressions(w http.ResponseWriter, r *http.Request) {
	if err := h.operator(r); err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	q := r.URL.Query()
	channel, address := q.Get("channel"), q.Get("address")
	var errs *fielderr.Error
	if channel != "" {
		errs = errs.Also(validChannel(channel, "channel"))
	} else if address != "" {
		errs = errs.Also(fielderr.Missing("channel").Also(&fielderr.Error{Message: "address needs channel", Paths: []string{"address"}}))
	}
	limit := 100
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxSuppressionsListed {
			errs = errs.Also(fielderr.OutOfBounds(raw, 1, maxSuppressionsListed, "limit"))
		}
		limit = n
	}
	if errs != nil {
		ceserver.WriteError(w, h.logger, errs)
		return
	}
	list, err := h.store.Suppressions(r.Context(), channel, address, limit)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	if list == nil {
		list = []store.Suppression{}
	}
	ceserver.WriteJSON(w, http.StatusOK, Suppressions{Suppressions: list})
}

// removeSuppression answers DELETE /v1/suppressions/{channel}/{address}: 200 once removed,
// 404 when the address was not suppressed. The address is the rest of the path, so a URL
// fits; escape characters a path cannot hold.
func (h *Handler) removeSuppression(w http.ResponseWriter, r *http.Request) {
	if err := h.operator(r); err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	addr := store.Address{Channel: r.PathValue("channel"), Address: r.PathValue("address")}
	errs := validChannel(addr.Channel, "channel")
	if addr.Address == "" {
		errs = errs.Also(fielderr.Missing("address"))
	}
	if errs != nil {
		ceserver.WriteError(w, h.logger, errs)
		return
	}
	if err := h.store.Unsuppress(r.Context(), addr); err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	h.logger.Info("suppression removed", "channel", addr.Channel)
	ceserver.WriteJSON(w, http.StatusOK, SuppressionRemoved{Channel: addr.Channel, Address: addr.Address, Removed: true})
}
