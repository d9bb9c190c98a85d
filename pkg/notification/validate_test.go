package notification_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/fielderr"
	"github.com/pulse-knative/pulse/pkg/notification"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fieldPaths lists the paths errs names, nil when there are no errors.
func fieldPaths(errs *fielderr.Error) []string {
	if errs == nil {
		return nil
	}
	var paths []string
	for _, e := range errs.WrappedErrors() {
		paths = append(paths, e.Paths...)
	}
	return paths
}

func TestParseRequestDefaults(t *testing.T) {
	t.Parallel()
	req, errs := notification.ParseRequest([]byte(`{"channel":"email","to":"ada@example.com","subject":"Hi","html":"<p>x</p>",
		"send_at":"2026-03-01T13:00:00+01:00","expires_at":"2026-03-02T00:00:00Z","max_attempts":3,"metadata":{"a":"b"}}`), now)
	require.Nil(t, errs)
	require.Equal(t, notification.High, req.Priority)
	require.Equal(t, 3, req.MaxAttempts)
	require.True(t, req.SendAt.Equal(now))
	require.Equal(t, map[string]string{"a": "b"}, req.Metadata)
}

func TestParseRequestChannels(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"sms":            `{"channel":"sms","to":"+447700900123","body":"code 1234"}`,
		"push body":      `{"channel":"push","to":"dev-token-1","subject":"t","body":"b"}`,
		"push data":      `{"channel":"push","to":"dev-token-1","data":{"data":{"k":"1"}}}`,
		"push overrides": `{"channel":"push","to":"t","body":"b","data":{"data":{},"android":{"priority":"high"},"apns":{"headers":{"apns-priority":"10"}},"webpush":{"headers":{"Urgency":"high"}}}}`,
		"webhook body":   `{"channel":"webhook","to":"http://hooks.example.com:8080/x?y=1","body":"plain"}`,
		"nulls":          `{"channel":"webhook","to":"https://h.example","data":{},"subject":null,"metadata":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, errs := notification.ParseRequest([]byte(data), now)
			require.Nil(t, errs)
		})
	}
}

// FuzzParseRequest: any input is either rejected with field errors or yields a request that
// names a known channel, a recipient and a known priority. It never panics.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"email","to":"ada@example.com","subject":"s","body":"b"}`,
		`{"channel":"sms","to":"+15551234567","body":"b","metadata":{"k":"v"}}`,
		`{"channel":"webhook","to":"https://x.example/h","data":{"a":[1,2]},"send_at":"2030-01-01T00:00:00Z"}`,
		`{"channel":"push","to":"tok","data":null,"max_attempts":99}`,
		`[]`, `null`, `{"channel":1}`, `{"to":{"x":1}}`, "\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, errs := notification.ParseRequest(data, now)
		if errs != nil {
			require.NotEmpty(t, errs.Error())
			return
		}
		require.Contains(t, notification.Channels, req.Channel)
		require.Contains(t, notification.Priorities, req.Priority)
		require.NotEmpty(t, req.To)
		if req.Data != nil {
			require.True(t, json.Valid(req.Data))
		}
	})
}

// FuzzDecodeString: the shortcut decodes exactly what encoding/json does.
func FuzzDecodeString(f *testing.F) {
	for _, seed := range []string{`"plain"`, `"with \"escape\""`, `"\u00e9t\u00e9"`, "\"\xff\"", `"tab\there"`, `12`, `"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var want string
		wantErr := json.Unmarshal(v, &want)
		if wantErr != nil || !json.Valid(v) {
			return // ParseRequest only passes values of a document that parsed
		}
		req, errs := notification.ParseRequest([]byte(`{"channel":"sms","to":`+string(v)+`,"body":"b"}`), now)
		if errs == nil || req.To != "" {
			require.Equal(t, want, req.To)
		}
	})
}

// TestParseRequestText: text fields and data are checked as PostgreSQL stores them; an escaped
// backslash before u0000 is plain text and is accepted.
func TestParseRequestText(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		data   string
		fields []string
	}{
		"escaped backslash in data":  {`{"channel":"webhook","to":"https://h.example","data":{"k":"\\u0000"}}`, nil},
		"escaped backslash in body":  {`{"channel":"sms","to":"+15551234567","body":"\\u0000"}`, nil},
		"surrogate pair in body":     {`{"channel":"sms","to":"+15551234567","body":"\ud83d\ude00"}`, nil},
		"invalid UTF-8 in to":        {"{\"channel\":\"push\",\"to\":\"t\xff\",\"body\":\"b\"}", []string{"to"}},
		"lone surrogate in subject":  {`{"channel":"push","to":"t","subject":"\ud800","body":"b"}`, []string{"subject"}},
		"nul in html":                {`{"channel":"email","to":"ada@example.com","subject":"s","html":"\u0000"}`, []string{"html"}},
		"invalid UTF-8 metadata key": {"{\"channel\":\"sms\",\"to\":\"+15551234567\",\"body\":\"b\",\"metadata\":{\"\xff\":\"v\"}}", []string{"metadata"}},
		"nul in metadata value":      {`{"channel":"sms","to":"+15551234567","body":"b","metadata":{"k":"\u0000"}}`, []string{"metadata.k"}},
		"huge number in data":        {`{"channel":"webhook","to":"https://h.example","data":{"a":{"b":[1e1000000]}}}`, []string{"data.a.b[0]"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, errs := notification.ParseRequest([]byte(tc.data), now)
			got := fieldPaths(errs)
			require.Equal(t, tc.fields, got, "%v", errs)
		})
	}
}

// TestParseRequestScheduleBound: send_at and expires_at may be at most MaxScheduleAhead ahead.
func TestParseRequestScheduleBound(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	for name, tc := range map[string]struct {
		extra  string
		fields []string
	}{
		"send_at at the bound":      {`,"send_at":"` + at(notification.MaxScheduleAhead) + `"`, nil},
		"send_at past the bound":    {`,"send_at":"` + at(notification.MaxScheduleAhead+time.Second) + `"`, []string{"send_at"}},
		"send_at in year 9999":      {`,"send_at":"9999-12-31T23:59:59Z"`, []string{"send_at"}},
		"send_at in the past":       {`,"send_at":"2001-01-01T00:00:00Z"`, nil},
		"expires_at at the bound":   {`,"expires_at":"` + at(notification.MaxScheduleAhead) + `"`, nil},
		"expires_at past the bound": {`,"expires_at":"9999-01-01T00:00:00Z"`, []string{"expires_at"}},
		"both past the bound":       {`,"send_at":"3000-01-01T00:00:00Z","expires_at":"3000-01-02T00:00:00Z"`, []string{"send_at", "expires_at"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, errs := notification.ParseRequest([]byte(`{"channel":"sms","to":"+15551234567","body":"b"`+tc.extra+`}`), now)
			got := fieldPaths(errs)
			require.ElementsMatch(t, tc.fields, got, "%v", errs)
		})
	}
}

func TestMetadataValuePaths(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", notification.MaxMetadataValue+1)
	_, errs := notification.ParseRequest([]byte(`{"channel":"sms","to":"+15551234567","body":"b","metadata":{"k":"`+long+`","a b":"`+long+`"}}`), now)
	require.ElementsMatch(t, []string{"metadata.k", "metadata[a b]"}, fieldPaths(errs))
}
