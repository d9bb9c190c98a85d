package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// The bounds of the operator's list, replay and cancel.
const (
	// DefaultPageSize is a list page's size when the request names none.
	DefaultPageSize = 50
	// MaxPageSize bounds a list page.
	MaxPageSize = 500
	// DefaultBatch is how many notifications one replay or cancel request moves when it names
	// no batch: one transaction's worth.
	DefaultBatch = 1000
	// MaxBatch bounds the notifications one replay or cancel request moves, and the ids it
	// may list.
	MaxBatch = 1000
	// MinErrorSearch is the shortest error= substring: shorter ones cannot use the trigram
	// index.
	MinErrorSearch = 3
	// maxFilterValue bounds every filter value.
	maxFilterValue = 1024
	// maxReason bounds the reason a replay or cancel records.
	maxReason = 500
	// maxOperatorBody bounds a replay or cancel request's body: a thousand ids and a filter.
	maxOperatorBody = 64 << 10
)

// Filter is the filter of a list, replay or cancel request: the query parameters of
// GET /v1/notifications, and the "filter" object of POST /v1/notifications:retry and :cancel.
type Filter struct {
	// Status is one state or several separated by commas.
	Status string `json:"status,omitempty"`
	// Channel is email, sms, push or webhook.
	Channel string `json:"channel,omitempty"`
	// Priority is high or low.
	Priority string `json:"priority,omitempty"`
	// Source is a CloudEvent source, matched exactly.
	Source string `json:"source,omitempty"`
	// Since and Until bound created_at: at or after Since, before Until (RFC 3339).
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
	// Error is a substring of the last error, matched ignoring case.
	Error string `json:"error,omitempty"`
}

// FilterFromQuery reads a filter from a list request's query parameters.
func FilterFromQuery(q url.Values) Filter {
	return Filter{Status: q.Get("status"), Channel: q.Get("channel"), Priority: q.Get("priority"),
		Source: q.Get("source"), Since: q.Get("since"), Until: q.Get("until"), Error: q.Get("error")}
}

// empty reports whether f selects everything.
func (f Filter) empty() bool { return f == Filter{} }

// parse validates f and returns the store's filter, or field errors naming each bad one.
func (f Filter) parse() (store.Filter, *fielderr.Error) {
	var out store.Filter
	var errs *fielderr.Error
	for name, v := range map[string]string{"status": f.Status, "channel": f.Channel, "priority": f.Priority,
		"source": f.Source, "since": f.Since, "until": f.Until, "error": f.Error} {
		if len(v) > maxFilterValue {
			errs = errs.Also(fielderr.OutOfBounds(len(v), 0, maxFilterValue, name).ViaField())
		}
	}
	if errs != nil {
		return out, errs
	}
	if f.Status != "" {
		for _, s := range strings.Split(f.Status, ",") {
			st := notification.Status(strings.TrimSpace(s))
			if !known(notification.Statuses, st) {
				errs = errs.Also(fielderr.InvalidValue(s, "status", "want one or more of "+join(notification.Statuses)))
				continue
			}
			out.Statuses = append(out.Statuses, st)
		}
	}
	if f.Channel != "" {
		if !known(notification.Channels, notification.Channel(f.Channel)) {
			errs = errs.Also(fielderr.InvalidValue(f.Channel, "channel", "want one of "+join(notification.Channels)))
		}
		out.Channel = notification.Channel(f.Channel)
	}
	if f.Priority != "" {
		if !known(notification.Priorities, notification.Priority(f.Priority)) {
			errs = errs.Also(fielderr.InvalidValue(f.Priority, "priority", "want one of "+join(notification.Priorities)))
		}
		out.Priority = notification.Priority(f.Priority)
	}
	if f.Source != "" {
		if errs2 := notification.ValidateEventKey(f.Source, "x"); errs2 != nil {
			errs = errs.Also(fielderr.InvalidValue(f.Source, "source", "not a CloudEvent source"))
		}
		out.Source = f.Source
	}
	for _, t := range []struct {
		name string
		raw  string
		to   *time.Time
	}{{"since", f.Since, &out.Since}, {"until", f.Until, &out.Until}} {
		if t.raw == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.raw)
		if err != nil {
			errs = errs.Also(fielderr.InvalidValue(t.raw, t.name, "want an RFC 3339 time such as 2026-03-01T12:00:00Z"))
			continue
		}
		*t.to = v
	}
	if !out.Since.IsZero() && !out.Until.IsZero() && !out.Until.After(out.Since) {
		errs = errs.Also(fielderr.InvalidValue(f.Until, "until", "must be after since"))
	}
	if f.Error != "" {
		if len([]rune(f.Error)) < MinErrorSearch {
			errs = errs.Also(fielderr.InvalidValue(f.Error, "error", fmt.Sprintf("want at least %d characters", MinErrorSearch)))
		}
		out.Error = f.Error
	}
	return out, errs
}

func known[T comparable](all []T, v T) bool {
	for _, a := range all {
		if a == v {
			return true
		}
	}
	return false
}

func join[T ~string](all []T) string {
	s := make([]string, len(all))
	for i, a := range all {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// scope restricts f to what token may see: its source prefixes, checked by the same rule as
// config.Tokens.Allows.
func (h *Handler) scope(f *store.Filter, token string) {
	if h.cfg.Auth == "none" {
		return
	}
	f.Prefixes = append([]string{}, h.cfg.Tokens[token]...)
}

// Page is one page of a list.
type Page struct {
	Notifications []notification.Notification `json:"notifications"`
	// NextCursor continues the list; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// list answers GET /v1/notifications: a page of the notifications the filter selects and the
// caller's token may see, newest first. With both source and id it is the lookup of one
// notification by the CloudEvent that asked for it, as before.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("id") {
		h.show(w, r)
		return
	}
	token, err := h.authorize(r)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	f, errs := FilterFromQuery(q).parse()
	limit := DefaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			errs = errs.Also(fielderr.OutOfBounds(v, 1, MaxPageSize, "limit"))
		}
		limit = n
	}
	var after *store.Cursor
	if v := q.Get("cursor"); v != "" {
		c, err := store.DecodeCursor(v)
		if err != nil {
			errs = errs.Also(fielderr.InvalidValue(v, "cursor", "not a cursor this API handed out"))
		}
		after = &c
	}
	if errs != nil {
		ceserver.WriteError(w, h.logger, errs)
		return
	}
	h.scope(&f, token)
	items, next, err := h.store.List(r.Context(), f, after, limit)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	page := Page{Notifications: items}
	if page.Notifications == nil {
		page.Notifications = []notification.Notification{}
	}
	if next != nil {
		page.NextCursor = next.Encode()
	}
	ceserver.WriteJSON(w, http.StatusOK, page)
}

// BulkRequest is the body of POST /v1/notifications:retry and :cancel. It names the
// notifications by ids or by filter, not both.
type BulkRequest struct {
	// IDs lists notifications by id, at most MaxBatch.
	IDs []string `json:"ids,omitempty"`
	// Filter selects notifications like the list's query parameters.
	Filter Filter `json:"filter,omitzero"`
	// DryRun counts what would move and moves nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Reason is recorded in each moved notification's attempt history.
	Reason string `json:"reason,omitempty"`
	// Cursor continues a filter's run where the previous answer's next_cursor left it.
	Cursor string `json:"cursor,omitempty"`
	// Batch bounds the notifications this request moves (default and at most MaxBatch).
	Batch int `json:"batch,omitempty"`
}

// BulkAnswer says what a replay or cancel request did.
type BulkAnswer struct {
	DryRun bool `json:"dry_run"`
	// Matched, on a dry run, counts the notifications the request would move: the filter's
	// or ids' notifications in a state it moves them from.
	Matched int64 `json:"matched"`
	// Moved counts the notifications this request moved; IDs lists them.
	Moved int      `json:"moved"`
	IDs   []string `json:"ids"`
	// NextCursor, when set, is where to go on: send the same request again with it as cursor.
	NextCursor string `json:"next_cursor,omitempty"`
	// Warning, when set, says what went only partly right.
	Warning string `json:"warning,omitempty"`
}

// ParseBulkRequest reads and checks the body of a replay or cancel request.
func ParseBulkRequest(body []byte) (BulkRequest, store.Filter, *store.Cursor, *fielderr.Error) {
	var req BulkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, store.Filter{}, nil, fielderr.New("body is not a JSON object of ids, filter, dry_run, reason, cursor and batch: "+jsonProblem(err), fielderr.Current)
	}
	if dec.More() {
		return req, store.Filter{}, nil, fielderr.New("body holds more than one JSON value", fielderr.Current)
	}
	f, errs := req.Filter.parse()
	errs = errs.ViaField("filter")
	switch {
	case len(req.IDs) > 0 && !req.Filter.empty():
		errs = errs.Also(fielderr.MultipleOneOf("ids", "filter"))
	case len(req.IDs) == 0 && req.Filter.empty():
		errs = errs.Also(fielderr.MissingOneOf("ids", "filter"))
	}
	if len(req.IDs) > MaxBatch {
		errs = errs.Also(fielderr.OutOfBounds(len(req.IDs), 1, MaxBatch, "ids"))
	}
	for i, id := range req.IDs {
		if len(id) > 64 || !isUUID(id) {
			errs = errs.Also(fielderr.InvalidValue(truncate(id, 64), "id", "not a notification id").ViaFieldIndex("ids", i))
		}
	}
	if len(req.IDs) > 0 {
		f.IDs = req.IDs
	}
	if req.Batch < 0 || req.Batch > MaxBatch {
		errs = errs.Also(fielderr.OutOfBounds(req.Batch, 1, MaxBatch, "batch"))
	}
	if len(req.Reason) > maxReason {
		errs = errs.Also(fielderr.OutOfBounds(len(req.Reason), 0, maxReason, "reason"))
	}
	var after *store.Cursor
	if req.Cursor != "" {
		c, err := store.DecodeCursor(req.Cursor)
		if err != nil {
			errs = errs.Also(fielderr.InvalidValue(truncate(req.Cursor, 64), "cursor", "not a cursor this API handed out"))
		}
		after = &c
	}
	return req, f, after, errs
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonProblem says what is wrong with a JSON body without echoing it.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return err.Error()[len("json: "):]
	default:
		return "invalid JSON"
	}
}

// actor names who asked for a replay or cancel in the attempt history: a short hash of the
// token, never the token.
func (h *Handler) actor(token string) string {
	if h.cfg.Auth == "none" {
		return "an unauthenticated caller (PULSE_INGEST_AUTH=none)"
	}
	sum := sha256.Sum256([]byte(token))
	return "token sha256:" + hex.EncodeToString(sum[:6])
}

// retry answers POST /v1/notifications:retry.
func (h *Handler) retry(w http.ResponseWriter, r *http.Request) {
	h.bulk(w, r, "replayed", store.Replayable, func(ctx context.Context, f store.Filter, after *store.Cursor, n int, note string) (store.Moved, error) {
		return h.store.Replay(ctx, f, after, n, note, func(ctx context.Context, due []store.Due) error {
			entries := make([]queue.Entry, len(due))
			for i, d := range due {
				entries[i] = queue.Entry{NotificationID: d.ID, Channel: string(d.Channel), Priority: string(d.Priority)}
			}
			return h.committer.queue.Enqueue(ctx, entries)
		})
	})
}

// cancelMatching answers POST /v1/notifications:cancel.
func (h *Handler) cancelMatching(w http.ResponseWriter, r *http.Request) {
	h.bulk(w, r, "cancelled", store.Cancellable, h.store.CancelMatching)
}

func (h *Handler) bulk(w http.ResponseWriter, r *http.Request, verb string, from []notification.Status,
	move func(ctx context.Context, f store.Filter, after *store.Cursor, n int, note string) (store.Moved, error)) {
	token, err := h.authorize(r)
	if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOperatorBody))
	if err != nil {
		ceserver.WriteError(w, h.logger, fmt.Errorf("%w: body over %d bytes", ceserver.ErrTooLarge, maxOperatorBody))
		return
	}
	req, f, after, errs := ParseBulkRequest(body)
	if errs == nil && len(f.Statuses) > 0 && len(intersect(f.Statuses, from)) == 0 {
		errs = fielderr.InvalidValue(req.Filter.Status, "filter.status", "this request moves only "+join(from)+" notifications")
	}
	if errs != nil {
		ceserver.WriteError(w, h.logger, errs)
		return
	}
	h.scope(&f, token)
	answer := BulkAnswer{DryRun: req.DryRun, IDs: []string{}}
	if req.DryRun {
		answer.Matched, err = h.store.Count(r.Context(), f, from)
		if err != nil {
			ceserver.WriteError(w, h.logger, err)
			return
		}
		ceserver.WriteJSON(w, http.StatusOK, answer)
		return
	}
	n := req.Batch
	if n == 0 {
		n = DefaultBatch
	}
	note := verb + " by " + h.actor(token)
	if req.Reason != "" {
		note += ": " + req.Reason
	}
	moved, err := move(r.Context(), f, after, n, note)
	if errors.Is(err, store.ErrEnqueueLater) {
		// Committed: the rows are queued and the recover job enqueues them.
		h.logger.Warn("replayed notifications not added to their streams", "error", err)
		answer.Warning = "moved, but not added to their streams (Redis): the recover job enqueues them within PULSE_RECOVER_QUEUED_AFTER"
	} else if err != nil {
		ceserver.WriteError(w, h.logger, err)
		return
	}
	for _, d := range moved.Notifications {
		answer.IDs = append(answer.IDs, d.ID)
	}
	answer.Moved = len(moved.Notifications)
	if moved.Next != nil && len(f.IDs) == 0 {
		answer.NextCursor = moved.Next.Encode()
	}
	h.logger.Info("notifications "+verb+" by an operator", "count", answer.Moved, "by", h.actor(token), "more", answer.NextCursor != "")
	ceserver.WriteJSON(w, http.StatusOK, answer)
}

func intersect(a, b []notification.Status) []notification.Status {
	var out []notification.Status
	for _, x := range a {
		if known(b, x) {
			out = append(out, x)
		}
	}
	return out
}
