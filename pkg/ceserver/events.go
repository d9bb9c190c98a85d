package ceserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"sort"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"knative.dev/pkg/apis"
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
// long. Bad input gives a *apis.FieldError naming what is wrong, or ErrTooLarge.
func ReadEvents(r *http.Request, maxBytes int64, maxBatch int) (events []event.Event, batch bool, err error) {
	body, err := readBody(r, maxBytes)
	if err != nil {
		return nil, false, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if isBatch(r.Header) {
		// What cehttp.NewEventsFromHTTPRequest does, without a json.Decoder's copy of the body:
		// a batch of a thousand events is the largest thing ingest holds.
		var events []event.Event
		err := json.Unmarshal(body, &events)
		if err != nil {
			return nil, true, apis.ErrGeneric("not a JSON array of CloudEvents: "+err.Error(), apis.CurrentField)
		}
		if len(events) == 0 {
			return nil, true, apis.ErrGeneric("the batch holds no events", apis.CurrentField)
		}
		if len(events) > maxBatch {
			return nil, true, apis.ErrGeneric(fmt.Sprintf("the batch holds %d events, at most %d allowed", len(events), maxBatch), apis.CurrentField)
		}
		var errs *apis.FieldError
		for i := range events {
			errs = errs.Also(ValidateEvent(events[i]).ViaIndex(i))
		}
		if errs != nil {
			return nil, true, errs
		}
		return events, true, nil
	}
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		return nil, false, apis.ErrGeneric("not a CloudEvent (binary or structured mode): "+err.Error(), apis.CurrentField)
	}
	if errs := ValidateEvent(*e); errs != nil {
		return nil, false, errs
	}
	return []event.Event{*e}, false, nil
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
func ValidateEvent(e event.Event) *apis.FieldError {
	err := e.Validate()
	if err == nil {
		return nil
	}
	var verr event.ValidationError
	if !errors.As(err, &verr) {
		return apis.ErrGeneric(err.Error(), apis.CurrentField)
	}
	names := make([]string, 0, len(verr))
	for name := range verr {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs *apis.FieldError
	for _, name := range names {
		errs = errs.Also(apis.ErrGeneric(verr[name].Error(), name))
	}
	return errs
}
