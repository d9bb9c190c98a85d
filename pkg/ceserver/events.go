package ceserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// Errors of reading a request body, each the client's fault.
var (
	// ErrTooLarge means a request body is over the size limit.
	ErrTooLarge = errors.New("request body is too large")
	// ErrIncompleteBody means the body ended before the length the client declared, or the
	// client broke the connection while sending it.
	ErrIncompleteBody = errors.New("request body ended early")
	// ErrBodyTimeout means the client did not send the body within the server's read timeout.
	ErrBodyTimeout = errors.New("request body was not sent in time")
)

// ReadEvents reads the CloudEvents of a request: one in binary or structured mode, or up to
// maxBatch in an application/cloudevents-batch+json array. The body may be at most maxBytes
// long. Bad input gives a *fielderr.Error naming what is wrong, or ErrTooLarge.
func ReadEvents(r *http.Request, maxBytes int64, maxBatch int) (events []event.Event, batch bool, err error) {
	body, err := readBody(r, maxBytes)
	if err != nil {
		return nil, false, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if isBatch(r.Header) {
		events, err := decodeBatch(body, maxBatch)
		return events, true, err
	}
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		return nil, false, describeRequest(r.Header, body)
	}
	if errs := ValidateEvent(*e); errs != nil {
		return nil, false, errs
	}
	return []event.Event{*e}, false, nil
}

// ReadOneEvent reads the one CloudEvent of a function that takes a single event on POST /,
// as the deliver and cron functions do. It answers any other method or path with 404 and an
// event it cannot read with WriteError; ok is false when it has answered.
func ReadOneEvent(w http.ResponseWriter, r *http.Request, maxBytes int64, logger *slog.Logger) (e event.Event, ok bool) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		http.NotFound(w, r)
		return event.Event{}, false
	}
	events, _, err := ReadEvents(r, maxBytes, 1)
	if err != nil {
		WriteError(w, logger, err)
		return event.Event{}, false
	}
	return events[0], true
}

// decodeBatch decodes an application/cloudevents-batch+json body, naming the index of each bad
// event. What cehttp.NewEventsFromHTTPRequest does, without a json.Decoder's copy of the body.
func decodeBatch(body []byte, maxBatch int) ([]event.Event, error) {
	// The common case in one pass; only a batch that fails is taken apart to name the event.
	var events []event.Event
	if err := json.Unmarshal(body, &events); err == nil && len(events) > 0 && len(events) <= maxBatch {
		var errs *fielderr.Error
		for i := range events {
			errs = errs.Also(ValidateEvent(events[i]).ViaIndex(i))
		}
		if errs != nil {
			return nil, errs
		}
		return events, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fielderr.New("must be a JSON array of CloudEvents", "body")
	}
	switch {
	case len(raws) == 0:
		return nil, fielderr.New("the batch holds no events, at least one is required", fielderr.Current).ViaIndex(0)
	case len(raws) > maxBatch:
		// Named by the first index over the limit.
		return nil, fielderr.New(fmt.Sprintf("the batch holds %d events, at most %d allowed", len(raws), maxBatch),
			fielderr.Current).ViaIndex(maxBatch)
	}
	events = make([]event.Event, len(raws))
	var errs *fielderr.Error
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &events[i]); err != nil {
			errs = errs.Also(describeStructured(raw, fielderr.Current).ViaIndex(i))
			continue
		}
		errs = errs.Also(ValidateEvent(events[i]).ViaIndex(i))
	}
	if errs != nil {
		return nil, errs
	}
	return events, nil
}

// stringAttributes are the context attributes whose JSON value must be a string.
var stringAttributes = []string{"id", "source", "type", "subject", "datacontenttype", "dataschema", "time", "data_base64"}

// describeStructured says which attribute of a structured-mode event the SDK could not decode.
// Its messages never quote the SDK's, which show the body around the fault. whole names the
// event itself, for faults of no attribute.
func describeStructured(raw []byte, whole string) *fielderr.Error {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil || attrs == nil {
		return fielderr.New("must be a JSON object (a CloudEvent in structured mode)", whole)
	}
	var errs *fielderr.Error
	if v, ok := attrs["specversion"]; !ok {
		errs = errs.Also(fielderr.Missing("specversion"))
	} else {
		errs = errs.Also(checkSpecVersion(v))
	}
	for _, name := range stringAttributes {
		v, ok := attrs[name]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		switch {
		case json.Unmarshal(v, &s) != nil:
			errs = errs.Also(fielderr.New("must be a string", name))
		case name == "time":
			errs = errs.Also(checkTime(s))
		case name == "data_base64":
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				errs = errs.Also(fielderr.New("must be base64", name))
			}
		}
	}
	if d, ok := attrs["data"]; ok {
		errs = errs.Also(notification.ValidateJSONB(d, "data"))
	}
	if errs == nil {
		errs = fielderr.New("is not a CloudEvent in structured mode", whole)
	}
	return errs
}

// describeRequest says why a request that is not a batch is not a CloudEvent.
func describeRequest(h http.Header, body []byte) *fielderr.Error {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); strings.HasPrefix(mt, "application/cloudevents") {
		return describeStructured(body, "body")
	}
	sv := h.Get("Ce-Specversion")
	if sv == "" {
		fe := fielderr.Missing("specversion")
		fe.Details = "send a CloudEvent: Ce-* headers (binary mode) or application/cloudevents+json (structured mode)"
		return fe
	}
	quoted, _ := json.Marshal(sv)
	errs := checkSpecVersion(quoted)
	if t := h.Get("Ce-Time"); t != "" {
		errs = errs.Also(checkTime(t))
	}
	if errs == nil {
		errs = fielderr.New("is not a CloudEvent in binary mode", "body")
	}
	return errs
}

func checkSpecVersion(v json.RawMessage) *fielderr.Error {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return fielderr.New("must be a string", "specversion")
	}
	if s != event.CloudEventsVersionV1 && s != event.CloudEventsVersionV03 {
		return fielderr.InvalidValue(s, "specversion", "want "+event.CloudEventsVersionV1)
	}
	return nil
}

func checkTime(s string) *fielderr.Error {
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return fielderr.InvalidValue(s, "time", "want an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return nil
}

// declaredBodyBuffer bounds the buffer readBody sets aside for a body before any of it has
// arrived: a client declaring ten megabytes and sending nothing holds no more than this. A
// batch of a thousand typical events fits.
const declaredBodyBuffer = 512 << 10

// isBatch reports whether a request holds a batch of events: its media type is
// application/cloudevents-batch+json, with or without parameters such as charset (the SDK's
// own check compares the whole header).
func isBatch(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == event.ApplicationCloudEventsBatchJSON
}

// readBody reads a request body of at most maxBytes. A body declared longer is refused at
// once, unread. The errors say whose fault a failed read is: ErrTooLarge, ErrBodyTimeout (the
// server's read timeout ran out), ErrIncompleteBody (the body or the connection ended early).
func readBody(r *http.Request, maxBytes int64) ([]byte, error) {
	if r.ContentLength > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes declared, the limit is %d", ErrTooLarge, r.ContentLength, maxBytes)
	}
	body, err := readBodyInto(http.MaxBytesReader(nil, r.Body, maxBytes), r.ContentLength, maxBytes)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return body, nil
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, maxBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("read request body: %w", ErrBodyTimeout)
	}
	// io.ErrUnexpectedEOF, a reset connection, bad chunked encoding: the client's doing,
	// and the details of its connection are no use in the answer.
	return nil, fmt.Errorf("read request body: %w", ErrIncompleteBody)
}

// readBodyInto reads body into a buffer sized from the declared length (up to
// declaredBodyBuffer) when the client sent one, rather than growing it from nothing by
// doubling.
func readBodyInto(body io.Reader, declared, maxBytes int64) ([]byte, error) {
	if declared <= 0 || declared > maxBytes {
		return io.ReadAll(body)
	}
	// One byte more than declared, so that the end of the body is seen without growing.
	buf := make([]byte, 0, min(declared, declaredBodyBuffer)+1)
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case len(buf) == cap(buf):
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// ValidateEvent checks the event's context attributes against the CloudEvents spec.
func ValidateEvent(e event.Event) *fielderr.Error {
	err := e.Validate()
	if err == nil {
		return nil
	}
	var verr event.ValidationError
	if !errors.As(err, &verr) {
		return fielderr.New(err.Error(), fielderr.Current)
	}
	names := make([]string, 0, len(verr))
	for name := range verr {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs *fielderr.Error
	for _, name := range names {
		errs = errs.Also(fielderr.New(verr[name].Error(), name))
	}
	return errs
}
