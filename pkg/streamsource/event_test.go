package streamsource_test

import (
	"encoding/json"
	"net/url"
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
		"notification id that is no plain header value": {
			msg:      queue.Message{ID: "1-0", Fields: map[string]string{queue.FieldNotificationID: "n 1"}},
			wantData: `{"notification_id":"n 1"}`,
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

// FuzzEncodeData: the data of an entry is byte for byte what json.Marshal makes of its fields.
func FuzzEncodeData(f *testing.F) {
	f.Add(queue.FieldNotificationID, "n1", queue.FieldChannel, "email", queue.FieldEnqueuedAt, "1700000000000")
	f.Add("", "", "\xff", "\xfe\xc3", "\x00\x1f\b\f\n\r\t\x7f", `"\`)
	f.Add("<&>", "\u2028\u2029", "é", "世界🙂", "\xed\xa0\x80", "\xf4\x90\x80\x80")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		fields := map[string]string{k1: v1, k2: v2, k3: v3}
		want, err := json.Marshal(fields)
		require.NoError(t, err)
		require.Equal(t, string(want), string(streamsource.EncodeData(fields)))
	})
}

func TestHeaderValue(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ in, want string }{
		"plain":            {in: "1700000000000-0", want: "1700000000000-0"},
		"source":           {in: "/pulse/stream-source/high", want: "/pulse/stream-source/high"},
		"space and quotes": {in: `a "b"`, want: "a%20%22b%22"},
		"percent":          {in: "100%", want: "100%25"},
		"unicode":          {in: "é", want: "%C3%A9"},
		"controls":         {in: "\r\n\x7f", want: "%0D%0A%7F"},
		"empty":            {in: "", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, streamsource.HeaderValue(tc.in))
		})
	}
}

// FuzzHeaderValue: a header value is printable ASCII without space or '"', and
// percent-decodes to what was encoded.
func FuzzHeaderValue(f *testing.F) {
	f.Add("1700000000000-0")
	f.Add(` n 1%20"né" `)
	f.Add("\x00\r\n\xff")
	f.Fuzz(func(t *testing.T, s string) {
		v := streamsource.HeaderValue(s)
		for i := 0; i < len(v); i++ {
			require.True(t, v[i] > ' ' && v[i] < 0x7f && v[i] != '"', "byte %#x of %q", v[i], v)
		}
		got, err := url.PathUnescape(v)
		require.NoError(t, err)
		require.Equal(t, s, got)
	})
}
