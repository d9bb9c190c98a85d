package notification_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// TestWebhookURL: a webhook destination is an absolute http(s) URL without credentials, on a
// port from 1 to 65535; a refusal names "to" and never quotes the URL.
func TestWebhookURL(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		to     string
		wantOK bool
	}{
		"https":                 {"https://hooks.example.com/in", true},
		"explicit port":         {"http://hooks.example.com:8080/in", true},
		"top port":              {"http://hooks.example.com:65535/in", true},
		"token in query":        {"https://hooks.example.com/in?token=pw-s3cret", true},
		"user and password":     {"https://user:pw-s3cret@hooks.example.com/in", false},
		"user only":             {"https://pw-s3cret@hooks.example.com/in", false},
		"empty password":        {"https://user:@hooks.example.com/in", false},
		"port above 65535":      {"http://hooks.example.com:99999/in", false},
		"port zero":             {"http://hooks.example.com:0/in", false},
		"IPv6 with a bad port":  {"http://[2001:4860::1]:70000/in", false},
		"IPv6 with a good port": {"http://[2001:4860::1]:8443/in", true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, errs := notification.ParseRequest([]byte(`{"channel":"webhook","to":"`+tc.to+`","body":"b"}`), now)
			if tc.wantOK {
				require.Nil(t, errs)
				return
			}
			require.NotNil(t, errs)
			require.Equal(t, []string{"to"}, fieldPaths(errs))
			require.NotContains(t, errs.Error(), "s3cret")
		})
	}
}
