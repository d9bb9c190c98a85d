package notification_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
)

func TestParsePushData(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		data string
		want notification.PushData
	}{
		"every member": {
			data: `{"data":{"order":"42","empty":""},"android":{"priority":"high"},"apns":{"headers":{"apns-priority":"10"}},"webpush":{"headers":{"Urgency":"high"}}}`,
			want: notification.PushData{
				Data:    map[string]string{"order": "42", "empty": ""},
				Android: json.RawMessage(`{"priority":"high"}`),
				APNS:    json.RawMessage(`{"headers":{"apns-priority":"10"}}`),
				Webpush: json.RawMessage(`{"headers":{"Urgency":"high"}}`),
			},
		},
		"null members":   {data: `{"data":null,"android":null}`},
		"empty object":   {data: `{}`},
		"null":           {data: `null`},
		"escaped values": {data: `{"data":{"k":"line\nbreak é"}}`, want: notification.PushData{Data: map[string]string{"k": "line\nbreak é"}}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, errs := notification.ParsePushData(json.RawMessage(tt.data))
			require.Nil(t, errs)
			require.Empty(t, cmp.Diff(tt.want, got), "(-want +got)")
		})
	}
}

// TestValidatePushData: ingest answers each bad member of a push notification's data with
// its path, and never quotes a value.
func TestValidatePushData(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		data string
		want []string // each line of the error, in any order
	}{
		"value not a string":  {`{"data":{"k":1,"ok":"v"}}`, []string{"must be a string: data.data.k"}},
		"value null":          {`{"data":{"k":null}}`, []string{"must be a string: data.data.k"}},
		"map not an object":   {`{"data":["SECRET"]}`, []string{"must be a JSON object: data.data"}},
		"override not object": {`{"android":"SECRET","apns":[1],"webpush":true}`, []string{"must be a JSON object: data.android, data.apns, data.webpush"}},
		"unknown member":      {`{"notification":{"title":"SECRET"}}`, []string{"must not be set; push data takes data (a string map), android, apns and webpush: data.notification"}},
		"reserved key":        {`{"data":{"from":"SECRET","gcm.x":"SECRET","Google.y":"SECRET"}}`, []string{`is reserved by FCM (from, notification, message_type and keys starting with "google" or "gcm"): data.data.Google.y, data.data.from, data.data.gcm.x`}},
		"map over FCM's limit": {`{"data":{"k":"` + strings.Repeat("x", 4000) + `","l":"` + strings.Repeat("y", 95) + `"}}`, []string{
			"holds 4097 bytes of keys and values, at most 4096 allowed: data.data", "is 4119 bytes long, at most 4096 allowed: data"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, errs := notification.ParseRequest([]byte(`{"channel":"push","to":"tok","body":"b","data":`+tt.data+`}`), now)
			require.NotNil(t, errs)
			require.ElementsMatch(t, tt.want, strings.Split(errs.Error(), "\n"))
			require.NotContains(t, errs.Error(), "SECRET")
		})
	}
}

func TestValidateSMSBodyCountsCharacters(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		body    string
		wantErr string
	}{
		"1600 ASCII characters":     {body: strings.Repeat("a", 1600)},
		"1600 two-byte characters":  {body: strings.Repeat("é", 1600)},
		"1600 four-byte characters": {body: strings.Repeat("😀", 1600)},
		"1601 characters":           {body: strings.Repeat("a", 1601), wantErr: "is 1601 characters long, at most 1600 allowed: body"},
		"1601 two-byte characters":  {body: strings.Repeat("é", 1601), wantErr: "is 1601 characters long, at most 1600 allowed: body"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := json.Marshal(map[string]string{"channel": "sms", "to": "+15551234567", "body": tt.body})
			require.NoError(t, err)
			_, errs := notification.ParseRequest(data, now)
			if tt.wantErr == "" {
				require.Nil(t, errs)
				return
			}
			require.EqualError(t, errs, tt.wantErr)
		})
	}
}

// FuzzParsePushData: any data object either yields field errors or a map FCM accepts. It
// never panics.
func FuzzParsePushData(f *testing.F) {
	for _, seed := range []string{
		`{"data":{"k":"v"},"android":{"priority":"high"}}`, `{"data":{"k":1}}`, `{"x":1}`, `{"apns":"s"}`, `null`, `[]`, `{`,
		`{"data":{"from":"x"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, errs := notification.ParsePushData(data)
		if errs != nil {
			require.NotEmpty(t, errs.Error())
			return
		}
		size := 0
		for k, v := range p.Data {
			size += len(k) + len(v)
		}
		require.LessOrEqual(t, size, notification.MaxPushDataMap)
		for _, o := range []json.RawMessage{p.Android, p.APNS, p.Webpush} {
			if o != nil {
				require.True(t, json.Valid(o))
			}
		}
	})
}
