package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

func TestAccountsDecode(t *testing.T) {
	t.Parallel()
	type account struct {
		Name, URL string
		Rate      config.Rate
	}
	tests := map[string]struct {
		value   string
		want    []account
		wantErr string
	}{
		"ordered, rate stripped": {
			value: "primary=smtp://u:p@relay1.example.com:587?from=a%40example.com&rate=100/s,\n backup=smtps://u:p@relay2.example.com:465?from=a%40example.com",
			want: []account{
				{Name: "primary", URL: "smtp://u:p@relay1.example.com:587?from=a%40example.com", Rate: config.Rate{Count: 100, Per: time.Second}},
				{Name: "backup", URL: "smtps://u:p@relay2.example.com:465?from=a%40example.com"},
			},
		},
		"per minute":   {value: "a=twilio://AC1:tok@api.twilio.com?rate=6000/m", want: []account{{Name: "a", URL: "twilio://AC1:tok@api.twilio.com", Rate: config.Rate{Count: 6000, Per: time.Minute}}}},
		"empty":        {value: " \n, ", want: nil},
		"no name":      {value: "smtp://u:s3cret@h", wantErr: "entry 1"},
		"bad name":     {value: "a b=smtp://u:s3cret@h", wantErr: "entry 1"},
		"twice":        {value: "a=smtp://u:s3cret@h,a=smtp://u:s3cret@h", wantErr: "account a: named twice"},
		"no scheme":    {value: "a=u:s3cret@h", wantErr: "account a: the URL"},
		"bad rate":     {value: "a=smtp://u:s3cret@h?rate=fast", wantErr: "account a: rate"},
		"zero rate":    {value: "a=smtp://u:s3cret@h?rate=0/s", wantErr: "account a: rate"},
		"bad url":      {value: "a=smtp://u:s3cret@h:port", wantErr: "account a: the URL"},
		"bad unit":     {value: "a=smtp://u:s3cret@h?rate=1/d", wantErr: "account a: rate"},
		"newline only": {value: "a=fcm://?project=p\nb=fcm://?project=q", want: []account{{Name: "a", URL: "fcm:?project=p"}, {Name: "b", URL: "fcm:?project=q"}}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var accounts config.Accounts
			err := accounts.Decode(tt.value)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "s3cret", "errors never quote the URL")
				return
			}
			require.NoError(t, err)
			var got []account
			for _, a := range accounts {
				got = append(got, account{Name: a.Name, URL: a.URL.String(), Rate: a.Rate})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("accounts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChannelsDecode(t *testing.T) {
	t.Parallel()
	var c config.Channels
	require.NoError(t, c.Decode("webhook, email"))
	require.Equal(t, config.Channels{"webhook", "email"}, c)
	require.True(t, c.Has("email"))
	require.False(t, c.Has("sms"))
	require.ErrorContains(t, c.Decode("webhook,fax"), `"fax"`)
}

func TestDeliverChannels(t *testing.T) {
	t.Parallel()
	var email config.Accounts
	require.NoError(t, email.Decode("a=smtp://h"))
	cfg := config.Deliver{EmailAccounts: email, WebhookSecret: "whsec_a, whsec_b"}
	require.Equal(t, config.Channels{"email", "webhook"}, cfg.Channels())
	require.Equal(t, []string{"whsec_a", "whsec_b"}, cfg.WebhookSecrets())
}

// FuzzAccountsDecode: any value either fails without quoting a URL's secret, or gives named
// accounts whose URLs have a scheme and no rate parameter. It never panics.
func FuzzAccountsDecode(f *testing.F) {
	for _, seed := range []string{
		"a=smtp://u:p@h:587?from=x%40y.z&rate=10/s", "a=b", "=smtp://h", "a=smtp://h,a=smtp://h",
		"a=twilio://SID:TOK@api.twilio.com?rate=1/m\nb=twilio://x", "a=fcm://?rate=9999999999999999999/s", ",,\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var accounts config.Accounts
		if err := accounts.Decode(value); err != nil {
			if strings.Contains(value, "SECRETPART") {
				require.NotContains(t, err.Error(), "SECRETPART")
			}
			return
		}
		for _, a := range accounts {
			require.NotEmpty(t, a.Name)
			require.NotEmpty(t, a.URL.Scheme)
			require.False(t, a.URL.Query().Has("rate"))
			require.True(t, a.Rate.IsZero() || a.Rate.Count > 0)
		}
	})
}
