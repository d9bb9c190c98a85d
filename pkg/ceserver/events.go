package ceserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"knative.dev/pkg/apis"
)

// ErrTooLarge means a request body is over the size limit.
var ErrTooLarge = errors.New("request body is too large")

// ReadEvents reads the CloudEvents of a request: one in binary or structured mode, or up to
// maxBatch in an application/cloudevents-batch+json array. The body may be at most maxBytes
// long. Bad input gives a *apis.FieldError naming what is wrong, or ErrTooLarge.
func ReadEvents(r *http.Request, maxBytes int64, maxBatch int) (events []event.Event, batch bool, err error) {
	body, err := readBody(r, maxBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, false, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, maxBytes)
		}
		return nil, false, fmt.Errorf("read request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if cehttp.IsHTTPBatch(r.Header) {
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

// readBody reads a request body of at most maxBytes into a buffer sized from Content-Length
// (up to declaredBodyBuffer) when the client sent one, rather than growing it from nothing by
// doubling.
func readBody(r *http.Request, maxBytes int64) ([]byte, error) {
	body := http.MaxBytesReader(nil, r.Body, maxBytes)
	if r.ContentLength <= 0 || r.ContentLength > maxBytes {
		return io.ReadAll(body)
	}
	// One byte more than declared, so that the end of the body is seen without growing.
	buf := make([]byte, 0, min(r.ContentLength, declaredBodyBuffer)+1)
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
