package delivery

import (
	"encoding/json"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// NotificationID returns the notification a dispatch event asks to deliver. It reads Pulse's
// dispatch event (data: a JSON object of the stream entry's fields) and Knative's
// RedisStreamSource event (data: a JSON array of interleaved field names and values).
func NotificationID(e event.Event) (string, *fielderr.Error) {
	var fields map[string]string
	switch e.Type() {
	case notification.TypeDispatch:
		if err := json.Unmarshal(e.Data(), &fields); err != nil {
			return "", fielderr.New("must be a JSON object of strings", "data")
		}
	case notification.TypeRedisStream:
		var pairs []string
		if err := json.Unmarshal(e.Data(), &pairs); err != nil || len(pairs)%2 != 0 {
			return "", fielderr.New("must be a JSON array of field and value strings", "data")
		}
		fields = make(map[string]string, len(pairs)/2)
		for i := 0; i < len(pairs); i += 2 {
			fields[pairs[i]] = pairs[i+1]
		}
	default:
		return "", fielderr.InvalidValue(e.Type(), "type",
			fmt.Sprintf("want %s or %s", notification.TypeDispatch, notification.TypeRedisStream))
	}
	id := fields[queue.FieldNotificationID]
	if id == "" {
		return "", fielderr.Missing("data." + queue.FieldNotificationID)
	}
	return id, nil
}
