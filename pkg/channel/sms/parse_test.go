package sms

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/channel/internal/channeltest"
)

func TestParseURL(t *testing.T) {
	t.Parallel()

	const (
		sid    = "AC00000000000000000000000000000001"
		secret = "SECRET-AUTH-TOKEN"
	)
	channeltest.CheckParseURL(t, ParseURL, secret, map[string]channeltest.URLCase[Config]{
		"account SID and from": {
			Raw:  "twilio://" + sid + ":" + secret + "@api.twilio.com?from=%2B15550001111",
			Want: Config{AccountSID: sid, Username: sid, Password: secret, From: "+15550001111", BaseURL: "https://api.twilio.com"},
		},
		"no host means api.twilio.com": {
			Raw:  "twilio://" + sid + ":" + secret + "@?from=%2B15550001111",
			Want: Config{AccountSID: sid, Username: sid, Password: secret, From: "+15550001111", BaseURL: "https://api.twilio.com"},
		},
		"another host": {
			Raw:  "twilio://" + sid + ":" + secret + "@api.eu1.twilio.example?messaging_service_sid=MG1",
			Want: Config{AccountSID: sid, Username: sid, Password: secret, MessagingServiceSID: "MG1", BaseURL: "https://api.eu1.twilio.example"},
		},
		"API key, every parameter": {
			Raw: "twilio://SK1:" + secret + "@api.twilio.com?account_sid=AC2&from=Pulse&messaging_service_sid=MG3" +
				"&status_callback=https%3A%2F%2Fh.example%2Fs&base_url=http%3A%2F%2F127.0.0.1%3A9000",
			Want: Config{AccountSID: "AC2", Username: "SK1", Password: secret, From: "Pulse", MessagingServiceSID: "MG3",
				StatusCallback: "https://h.example/s", BaseURL: "http://127.0.0.1:9000"},
		},
		"secret with escaped characters": {
			Raw:  "twilio://" + sid + ":" + "SECRET%2F%40x@api.twilio.com?from=%2B15550001111",
			Want: Config{AccountSID: sid, Username: sid, Password: "SECRET/@x", From: "+15550001111", BaseURL: "https://api.twilio.com"},
		},
		"wrong scheme":                {Raw: "https://" + sid + ":" + secret + "@api.twilio.com?from=x", WantErr: "the scheme must be twilio"},
		"not a URL":                   {Raw: "twilio://" + sid + ":" + secret + "%zz@api.twilio.com", WantErr: "not a valid URL"},
		"no credentials":              {Raw: "twilio://api.twilio.com?from=x", WantErr: "credentials are required"},
		"no secret":                   {Raw: "twilio://" + sid + "@api.twilio.com?from=x", WantErr: "credentials are required"},
		"user is not a SID":           {Raw: "twilio://bob:" + secret + "@api.twilio.com?from=x", WantErr: "the user must be an account SID"},
		"API key without account_sid": {Raw: "twilio://SK1:" + secret + "@api.twilio.com?from=x", WantErr: "account_sid is required"},
		"account_sid not an account":  {Raw: "twilio://SK1:" + secret + "@api.twilio.com?from=x&account_sid=XX1", WantErr: "account_sid must be"},
		"no sender":                   {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com", WantErr: "from or messaging_service_sid is required"},
		"bad messaging service":       {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?messaging_service_sid=XX", WantErr: "messaging_service_sid must be"},
		"unknown parameter":           {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&token=" + secret, WantErr: `unknown parameter "token"`},
		"repeated parameter":          {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&from=y", WantErr: "parameter from is given 2 times"},
		"status callback not a URL":   {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&status_callback=" + secret, WantErr: "status_callback must be"},
		"base_url not http":           {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=x&base_url=ftp%3A%2F%2Fh", WantErr: "base_url must be"},
		"a path":                      {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com/x?from=x", WantErr: "must have no path"},
		"bad query":                   {Raw: "twilio://" + sid + ":" + secret + "@api.twilio.com?from=%zz" + secret, WantErr: "the query is not valid"},
	})
}

func TestParseError(t *testing.T) {
	t.Parallel()

	channeltest.CheckErrorParser(t, parseError, map[string]channeltest.ErrorBody[apiError]{
		"Twilio's shape": {
			Body:   `{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
			Want:   apiError{Code: 21211, Message: "The 'To' number is not a valid phone number.", MoreInfo: "https://www.twilio.com/docs/errors/21211"},
			WantOK: true,
		},
		"code as a string":        {Body: `{"code":"21610"}`, Want: apiError{Code: 21610}, WantOK: true},
		"fractional code ignored": {Body: `{"code":21.5,"message":"m"}`, Want: apiError{Message: "m"}, WantOK: true},
		"negative code ignored":   {Body: `{"code":-1}`, WantOK: true},
		"huge code ignored":       {Body: `{"code":1e300}`, WantOK: true},
		"wrong types ignored":     {Body: `{"code":[1],"message":{},"more_info":7}`, WantOK: true},
		"more_info not a link":    {Body: `{"more_info":"javascript:alert(1)"}`, WantOK: true},
		"control characters":      {Body: `{"message":"line\none\u0007"}`, Want: apiError{Message: "lineone"}, WantOK: true},
		"long message cut": {
			Body: `{"message":"` + strings.Repeat("é", 300) + `"}`, Want: apiError{Message: strings.Repeat("é", maxErrorMessage) + "…"}, WantOK: true,
		},
		"HTML":  {Body: `<html>oops</html>`},
		"empty": {Body: ``},
		"array": {Body: `[{"code":1}]`},
		"cut":   {Body: `{"code":212`},
	})
}

// FuzzParseError: any answer body parses to a code that is a positive number or none, and to
// text that fits on one line of an error. It never panics.
func FuzzParseError(f *testing.F) {
	seeds := []string{
		`{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
		`{"code":20429,"message":"Too Many Requests","status":429}`,
		`{"code":"21610"}`, `{"code":1e999}`, `{"message":"\u0000\ud800"}`, `<html></html>`, `null`, `{`, "",
	}
	channeltest.FuzzErrorParser(f, parseError, seeds, func(t *testing.T, e apiError) {
		require.GreaterOrEqual(t, e.Code, 0)
		require.Less(t, e.Code, 1_000_000_000)
		for _, s := range []string{e.Message, e.MoreInfo} {
			channeltest.RequireOneLine(t, s, maxErrorMessage)
		}
	})
}
