package sms

import (
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	t.Parallel()

	const (
		sid    = "AC00000000000000000000000000000001"
		secret = "SECRET-AUTH-TOKEN"
	)
	tests := map[string]struct {
		raw     string
		want    Config
		wantErr string
	}{
		"account SID and from": {
			raw:  "twilio://" + sid + ":" + secret + "@api.twilio.com?from=%2B15550001111",
			want: Config{AccountSID: sid, Username: sid, Password: secret, From: "+15550001111", BaseURL: "https://api.twilio.com"},
		},
		"no host means api.twilio.com": {
			raw:  "twilio://" + sid + ":" + secret + "@?from=%2B15550001111",
			want: Config{AccountSID: sid, Username: sid, Password: secret, From: "+15550001111", BaseURL: "https://api.twilio.com"},
		},
		"another host": {
			raw:  "twilio://" + sid + ":" + secret + "@api.eu1.twilio.example?messaging_service_sid=MG1",
			want: Config{AccountSID: sid, Username: sid, Password: secret, MessagingServiceSID: "MG1", BaseURL: "https://api.eu1.twilio.example"},
		},
		"API key, every parameter": {
			raw: "twilio://SK1:" + secret + "@api.twilio.com?account_sid=AC2&from=Pulse&messaging_service_sid=MG3" +
				"&status_callback=https%3A%2F%2Fh.example%2Fs&base_url=http%3A%2F%2F127.0.0.1%3A9000",
			want: Config{AccountSID: "AC2", Username: "SK1", Password: secret, From: "Pulse", MessagingServiceSID: "MG3",
				StatusCallback: "https://h.example/s", BaseURL: "http://127.0.0.1:9000"},
		},
		"secret with escaped characters": {
			raw:  "twilio://" + sid + ":" + "SECRET%2F%40x@api.twilio.com?from=%2B15550001111",
			want: Config{AccountSID: sid, Username: sid, Password: "SECRET/@x", From: "+15550001111", BaseURL: "https://api.twilio.com"},
		},
		"wrong scheme":                {raw: "https://" + sid + ":" + secret + "@api.twilio.com?from=x", wantErr: "the scheme must be twilio"},
		"not a URL":                   {raw: "twilio://" + sid + ":" + secret + "%zz@api.twilio.com", wantErr: "not a valid URL"},
		"no credentials":              {raw: "twilio://api.twilio.com?from=x", wantErr: "credentials are required"},
		"no secret":                   {raw: "twilio://" + sid + "@api.twilio.com?from=x", wantErr: "credentials are required"},
		"user is not a SID":           {raw: "twilio://bob:" + secret + "@api.twilio.com?from=x", wantErr: "the user must be an account SID"},
		"API key without account_sid": {raw: "twilio://SK1:" + secret + "@api.twilio.com?from=x", wantErr: "account_sid is required"},
		"account_sid not an account":  {raw: "twilio://SK1:" + secret + "@api.twilio.com?from=x&account_sid=XX1", wantErr: "account_sid must be"},
		"no sender":                   {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com", wantErr: "from or messaging_service_sid is required"},
		"bad messaging service":       {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?messaging_service_sid=XX", wantErr: "messaging_service_sid must be"},
		"unknown parameter":           {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&token=" + secret, wantErr: `unknown parameter "token"`},
		"repeated parameter":          {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&from=y", wantErr: "parameter from is given 2 times"},
		"status callback not a URL":   {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&status_callback=" + secret, wantErr: "status_callback must be"},
		"base_url not http":           {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&base_url=ftp%3A%2F%2Fh", wantErr: "base_url must be"},
		"a path":                      {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com/x?from=x", wantErr: "must have no path"},
		"bad query":                   {raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=%zz" + secret, wantErr: "the query is not valid"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tt.raw)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), secret)
				require.NotContains(t, err.Error(), tt.raw)
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got), "(-want +got)")
		})
	}
}

func TestParseError(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		body   string
		want   apiError
		wantOK bool
	}{
		"Twilio's shape": {
			body:   `{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
			want:   apiError{Code: 21211, Message: "The 'To' number is not a valid phone number.", MoreInfo: "https://www.twilio.com/docs/errors/21211"},
			wantOK: true,
		},
		"code as a string":        {body: `{"code":"21610"}`, want: apiError{Code: 21610}, wantOK: true},
		"fractional code ignored": {body: `{"code":21.5,"message":"m"}`, want: apiError{Message: "m"}, wantOK: true},
		"negative code ignored":   {body: `{"code":-1}`, wantOK: true},
		"huge code ignored":       {body: `{"code":1e300}`, wantOK: true},
		"wrong types ignored":     {body: `{"code":[1],"message":{},"more_info":7}`, wantOK: true},
		"more_info not a link":    {body: `{"more_info":"javascript:alert(1)"}`, wantOK: true},
		"control characters":      {body: `{"message":"line\none\u0007"}`, want: apiError{Message: "lineone"}, wantOK: true},
		"long message cut": {
			body: `{"message":"` + strings.Repeat("é", 300) + `"}`, want: apiError{Message: strings.Repeat("é", maxErrorMessage) + "…"}, wantOK: true,
		},
		"HTML":  {body: `<html>oops</html>`},
		"empty": {body: ``},
		"array": {body: `[{"code":1}]`},
		"cut":   {body: `{"code":212`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseError([]byte(tt.body))
			require.Equal(t, tt.wantOK, ok)
			require.Empty(t, cmp.Diff(tt.want, got, cmp.AllowUnexported(apiError{})), "(-want +got)")
		})
	}
}

// FuzzParseError: any answer body parses to a code that is a positive number or none, and to
// text that fits on one line of an error. It never panics.
func FuzzParseError(f *testing.F) {
	for _, seed := range []string{
		`{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
		`{"code":20429,"message":"Too Many Requests","status":429}`,
		`{"code":"21610"}`, `{"code":1e999}`, `{"message":"\u0000\ud800"}`, `<html></html>`, `null`, `{`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, ok := parseError(body)
		if !ok {
			require.Zero(t, e)
			return
		}
		require.GreaterOrEqual(t, e.Code, 0)
		require.Less(t, e.Code, 1_000_000_000)
		for _, s := range []string{e.Message, e.MoreInfo} {
			require.LessOrEqual(t, len([]rune(s)), maxErrorMessage+1)
			require.False(t, strings.ContainsFunc(s, unicode.IsControl), "%q has control characters", s)
		}
	})
}
