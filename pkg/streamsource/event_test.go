package streamsource_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

func TestNewEvent(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		msg      queue.Message
		wantData string
		wantTime time.Time
		wantSubj string
	}{
		"dispatch entry": {
			msg:      queue.Message{ID: "1700000000123-4", Fields: entryFields("n1")},
			wantData: `{"channel":"email","enqueued_at":"1700000000000","notification_id":"n1"}`,
			wantTime: time.UnixMilli(1700000000123).UTC(),
			wantSubj: "n1",
		},
		"no fields": {
			msg:      queue.Message{ID: "1-0"},
			wantData: `{}`,
			wantTime: time.UnixMilli(1).UTC(),
		},
		"id without a time": {
			msg:      queue.Message{ID: "custom", Fields: map[string]string{"k": "v"}},
			wantData: `{"k":"v"}`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev, err := streamsource.NewEvent("low", tt.msg)
			require.NoError(t, err)
			require.Equal(t, tt.msg.ID, ev.ID())
			require.Equal(t, notification.TypeDispatch, ev.Type())
			require.Equal(t, streamsource.EventSource("low"), ev.Source())
			require.Equal(t, "low", ev.Extensions()[streamsource.PriorityExtension])
			require.Equal(t, "application/json", ev.DataContentType())
			require.JSONEq(t, tt.wantData, string(ev.Data()))
			require.True(t, tt.wantTime.Equal(ev.Time()), "time %s, want %s", ev.Time(), tt.wantTime)
			require.Equal(t, tt.wantSubj, ev.Subject())
		})
	}
}

func FuzzNewEvent(f *testing.F) {
	f.Add("1700000000000-0", queue.FieldNotificationID, "n1", queue.FieldChannel, "email")
	f.Add("", "", "", "", "")
	f.Add("-", "k", "\xff\xfe", "\x00", "\"}")
	f.Add("99999999999999999999-1", "a", "<&>", "a", "b")
	f.Fuzz(func(t *testing.T, id, k1, v1, k2, v2 string) {
		fields := map[string]string{k1: v1, k2: v2}
		ev, err := streamsource.NewEvent("high", queue.Message{ID: id, Fields: fields})
		if err != nil {
			return
		}
		// The SDK trims the id; Redis stream ids never have spaces.
		require.Equal(t, strings.TrimSpace(id), ev.ID())
		var got map[string]string
		require.NoError(t, json.Unmarshal(ev.Data(), &got), "data is always a JSON object of strings")
		if utf8.ValidString(k1) && utf8.ValidString(v1) && utf8.ValidString(k2) && utf8.ValidString(v2) {
			if diff := cmp.Diff(fields, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		}
	})
}
