package streamsource

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// PriorityExtension is the CloudEvents extension attribute that carries the priority of the
// stream the entry came from.
const PriorityExtension = "priority"

// EventSource returns the source attribute of the events read from priority's stream.
func EventSource(priority string) string {
	return "/pulse/stream-source/" + priority
}

// NewEvent returns the dispatch event of the stream entry m read from priority's stream: its
// id is the entry's id, its data the entry's fields as a JSON object, its time the time the
// entry was added (from the id) and its subject the notification id.
func NewEvent(priority string, m queue.Message) (event.Event, error) {
	data, err := EncodeData(m.Fields)
	if err != nil {
		return event.Event{}, fmt.Errorf("build event for entry %s: %w", m.ID, err)
	}
	e := event.New()
	e.SetID(m.ID)
	e.SetType(notification.TypeDispatch)
	e.SetSource(EventSource(priority))
	e.SetExtension(PriorityExtension, priority)
	if t, ok := entryTime(m.ID); ok {
		e.SetTime(t)
	}
	if id := m.Fields[queue.FieldNotificationID]; id != "" {
		e.SetSubject(id)
	}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return event.Event{}, fmt.Errorf("build event for entry %s: %w", m.ID, err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("build event for entry %s: %w", m.ID, err)
	}
	return e, nil
}

// EncodeData encodes the fields of a stream entry as the event's data, a JSON object of
// strings. Bytes that are not UTF-8 become U+FFFD, as encoding/json does.
func EncodeData(fields map[string]string) ([]byte, error) {
	if fields == nil {
		fields = map[string]string{}
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode entry fields: %w", err)
	}
	return data, nil
}

// entryTime returns the time a stream entry was added: its id is "<unix ms>-<sequence>".
func entryTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}
