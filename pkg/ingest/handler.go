package ingest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// ReplySource is the source of the reply events ingest answers with.
const ReplySource = "/pulse/ingest"

// Handler serves ingest's HTTP API: CloudEvents on POST /, the status API under
// /v1/notifications, and the operator's list, replay (POST /v1/notifications:retry) and cancel
// by filter (POST /v1/notifications:cancel).
type Handler struct {
	cfg       config.Ingest
	store     *store.Store
	committer *Committer
	logger    *slog.Logger
	now       func() time.Time
	mux       *http.ServeMux
}

// NewHandler returns ingest's handler. The committer must be started. A configuration
// without Channels accepts every channel.
func NewHandler(cfg config.Ingest, st *store.Store, committer *Committer, logger *slog.Logger) *Handler {
	h := &Handler{cfg: cfg, store: st, committer: committer, logger: logger, now: st.Now, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /{$}", h.receive)
	h.mux.HandleFunc("GET /v1/notifications/{id}", h.show)
	h.mux.HandleFunc("GET /v1/notifications", h.list)
	h.mux.HandleFunc("POST /v1/notifications:retry", h.retry)
	h.mux.HandleFunc("POST /v1/notifications:cancel", h.cancelMatching)
	h.mux.HandleFunc("DELETE /v1/notifications/{id}", h.cancelHTTP)
	h.mux.HandleFunc("DELETE /v1/notifications", h.cancelHTTP)
	h.mux.HandleFunc("GET /v1/suppressions", h.listSuppressions)
	h.mux.HandleFunc("DELETE /v1/suppressions/{channel}/{address...}", h.removeSuppression)
	if cfg.Auth == "none" {
		logger.Warn("ingest authentication is off (PULSE_INGEST_AUTH=none): anyone who reaches this service can send notifications; use only for local runs")
	}
	return h
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Answer is the data of a dev.pulse.notification.accepted reply: what one request became.
type Answer struct {
	ID        string                `json:"id"`
	Status    notification.Status   `json:"status"`
	Source    string                `json:"source"`
	EventID   string                `json:"event_id"`
	Channel   notification.Channel  `json:"channel"`
	Priority  notification.Priority `json:"priority"`
	CreatedAt time.Time             `json:"created_at"`
	Duplicate bool                  `json:"duplicate"`
}

// authorize returns the caller's token, or ErrUnauthorized.
func (h *Handler) authorize(r *http.Request) (string, error) {
	if h.cfg.Auth == "none" {
		return "", nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", ceserver.ErrUnauthorized
	}
	for known := range h.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(known), []byte(token)) == 1 {
			return known, nil
		}
	}
	return "", ceserver.ErrUnauthorized
}

func (h *Handler) allows(token, source string) bool {
	return h.cfg.Auth == "none" || h.cfg.Tokens.Allows(token, source)
}

func (h *Handler) receive(w http.ResponseWriter, r *http.Request) {
	token, err := h.authorize(r)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	events, batch, err := ceserver.ReadEvents(r, h.cfg.MaxRequestBytes, h.cfg.MaxBatch)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	if !batch && events[0].Type() == notification.TypeCancel {
		h.cancelEvent(w, r, token, events[0])
		return
	}
	items := make([]store.NewNotification, len(events))
	var errs *fielderr.Error
	var forbidden []string
	now := h.now()
	for i, e := range events {
		item, ferr := h.parse(e, now)
		if batch {
			ferr = ferr.ViaIndex(i)
		}
		errs = errs.Also(ferr)
		if !h.allows(token, e.Source()) {
			forbidden = append(forbidden, e.Source())
		}
		items[i] = item
	}
	if len(forbidden) > 0 {
		ceserver.WriteError(w, h.logger, fmt.Errorf("%w: source %q", ceserver.ErrForbidden, forbidden[0]))
		return
	}
	if errs != nil {
		ceserver.WriteError(w, h.logger, errs)
		return
	}
	accepted, err := h.committer.Commit(r.Context(), items)
	if err != nil {
		ceserver.WriteError(w, h.logger, h.inputFault(r.Context(), items, batch, err))
		return
	}
	answers := make([]Answer, len(accepted))
	for i, a := range accepted {
		answers[i] = Answer{ID: a.ID, Status: a.Status, Source: a.Source, EventID: a.EventID, Channel: a.Channel,
			Priority: a.Priority, CreatedAt: a.CreatedAt, Duplicate: a.Duplicate}
	}
	if batch {
		writeBatchReply(w, answers)
		return
	}
	h.logger.Debug("notification accepted", "ce_source", answers[0].Source, "ce_id", answers[0].EventID,
		"notification_id", answers[0].ID, "duplicate", answers[0].Duplicate)
	writeReply(w, answers[0])
}

// inputFault turns a commit that PostgreSQL refused because of a value of the request into
// the field error naming it, finding the event at fault in a batch. Other errors pass unchanged.
func (h *Handler) inputFault(ctx context.Context, items []store.NewNotification, batch bool, err error) error {
	var ie *store.InputError
	if !errors.As(err, &ie) {
		return err
	}
	i := 0
	if batch {
		var found *store.InputError
		if i, err = h.store.Unstorable(ctx, items); errors.As(err, &found) {
			ie = found
		}
	}
	field := ie.Field
	if field == "" {
		field = "data"
	}
	fe := fielderr.New(ie.Reason(), field)
	if batch && i >= 0 {
		fe = fe.ViaIndex(i)
	}
	return fe
}

// parse turns one event into a notification to store, or the field errors that stop it.
func (h *Handler) parse(e event.Event, now time.Time) (store.NewNotification, *fielderr.Error) {
	item := store.NewNotification{Source: e.Source(), EventID: e.ID()}
	if errs := notification.ValidateEventKey(e.Source(), e.ID()); errs != nil {
		return item, errs
	}
	if e.Type() != notification.TypeRequested {
		return item, fielderr.InvalidValue(e.Type(), "type", "want "+notification.TypeRequested)
	}
	if ct := e.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/json" && !strings.HasSuffix(mt, "+json")) {
			return item, fielderr.InvalidValue(ct, "datacontenttype", "want application/json")
		}
	}
	if len(e.Data()) == 0 {
		return item, fielderr.Missing("data")
	}
	req, errs := notification.ParseRequest(e.Data(), now)
	if errs != nil {
		return item, errs.ViaField("data")
	}
	if len(h.cfg.Channels) > 0 && !h.cfg.Channels.Has(string(req.Channel)) {
		return item, &fielderr.Error{Message: fmt.Sprintf("channel %q is not enabled", req.Channel),
			Paths:   []string{"data.channel"},
			Details: "this Pulse accepts " + strings.Join(h.cfg.Channels, ", ") + " (PULSE_CHANNELS)"}
	}
	item.Request = req
	item.MaxAttempts = req.MaxAttempts
	if item.MaxAttempts == 0 {
		item.MaxAttempts = len(h.cfg.Retry.For(string(req.Channel))) + 1
	}
	return item, nil
}

// ReplyEvent is a dev.pulse.notification.accepted CloudEvent in structured mode. Ingest
// writes its replies itself: building them with the SDK cost a tenth of ingest's CPU.
type ReplyEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Type            string    `json:"type"`
	Source          string    `json:"source"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Answer    `json:"data"`
}

func replyEvent(a Answer) ReplyEvent {
	return ReplyEvent{SpecVersion: "1.0", ID: a.ID, Type: notification.TypeAccepted, Source: ReplySource,
		Subject: a.ID, Time: a.CreatedAt.UTC(), DataContentType: "application/json", Data: a}
}

// writeReply answers one request with a binary-mode dev.pulse.notification.accepted event:
// 202 for a new notification, 200 for a repeat of one stored before.
func writeReply(w http.ResponseWriter, a Answer) {
	e := replyEvent(a)
	hdr := w.Header()
	hdr.Set("Ce-Specversion", e.SpecVersion)
	hdr.Set("Ce-Id", e.ID)
	hdr.Set("Ce-Type", e.Type)
	hdr.Set("Ce-Source", e.Source)
	hdr.Set("Ce-Subject", e.Subject)
	hdr.Set("Ce-Time", e.Time.Format(time.RFC3339Nano))
	hdr.Set("Location", "/v1/notifications/"+a.ID)
	code := http.StatusAccepted
	if a.Duplicate {
		code = http.StatusOK
	}
	ceserver.WriteJSON(w, code, a)
}

// writeBatchReply answers a batch with one structured accepted event per request, in order.
func writeBatchReply(w http.ResponseWriter, answers []Answer) {
	events := make([]ReplyEvent, len(answers))
	for i, a := range answers {
		events[i] = replyEvent(a)
	}
	w.Header().Set("Content-Type", "application/cloudevents-batch+json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(events)
}

// Status is what the status API shows of a notification.
type Status struct {
	notification.Notification
	DeliveryAttempts []store.AttemptRow `json:"delivery_attempts"`
}

// visible finds the notification a status API request names, by its id in the path or by
// the source and id query parameters of the request that created it, and checks that the
// caller's token may see it.
func (h *Handler) visible(r *http.Request) (notification.Notification, error) {
	token, err := h.authorize(r)
	if err != nil {
		return notification.Notification{}, err
	}
	var n notification.Notification
	if id := r.PathValue("id"); id != "" {
		n, err = h.store.Get(r.Context(), id)
	} else {
		source, id := r.URL.Query().Get("source"), r.URL.Query().Get("id")
		if errs := notification.ValidateEventKey(source, id); errs != nil {
			return n, errs
		}
		n, err = h.store.GetByEvent(r.Context(), source, id)
	}
	if err == nil && !h.allows(token, n.Source) {
		// Another source's notification: do not even say it exists.
		err = notification.ErrNotFound
	}
	return n, err
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	n, err := h.visible(r)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	attempts, err := h.store.Attempts(r.Context(), n.ID)
	if err != nil && !errors.Is(err, notification.ErrNotFound) {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	if attempts == nil {
		attempts = []store.AttemptRow{}
	}
	ceserver.WriteJSON(w, http.StatusOK, Status{Notification: n, DeliveryAttempts: attempts})
}
