package email_test

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/channel/email"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	from := mail.Address{Address: "alerts@example.com"}
	tests := map[string]struct {
		url  string
		want email.Config
	}{
		"submission with STARTTLS": {
			url: "smtp://user:pass@relay.example.com?from=alerts%40example.com",
			want: email.Config{Host: "relay.example.com", Port: 587, TLS: email.TLSStartTLS, Username: "user", Password: "pass",
				From: from},
		},
		"implicit TLS": {
			url:  "smtps://user:pass@relay.example.com?from=alerts%40example.com",
			want: email.Config{Host: "relay.example.com", Port: 465, TLS: email.TLSImplicit, Username: "user", Password: "pass", From: from},
		},
		"every parameter": {
			url: "smtp://apikey:p%40ss%3Aw%2Frd@10.0.0.5:2525?from=Shop%20%3Cshop%40example.com%3E&reply_to=help%40example.com" +
				"&tls=opportunistic&auth=cram-md5&pool=8&idle=2m&insecure_skip_verify=true&ca_file=%2Fetc%2Fpulse%2Fca.pem",
			want: email.Config{Host: "10.0.0.5", Port: 2525, TLS: email.TLSOpportunistic, Username: "apikey", Password: "p@ss:w/rd",
				Auth: email.AuthCRAMMD5, From: mail.Address{Name: "Shop", Address: "shop@example.com"},
				ReplyTo: &mail.Address{Address: "help@example.com"}, PoolSize: 8, IdleTimeout: 2 * time.Minute,
				InsecureSkipVerify: true, CAFile: "/etc/pulse/ca.pem"},
		},
		"local relay without TLS or AUTH": {
			url:  "smtp://127.0.0.1:1025?from=dev%40pulse.localhost&tls=none",
			want: email.Config{Host: "127.0.0.1", Port: 1025, TLS: email.TLSNone, From: mail.Address{Address: "dev@pulse.localhost"}},
		},
		"IPv6 host": {
			url: "smtp://u:p@[::1]:25/?from=alerts%40example.com&tls=NONE&auth=PLAIN&pool=1",
			want: email.Config{Host: "::1", Port: 25, TLS: email.TLSNone, Username: "u", Password: "p", Auth: email.AuthPlain,
				From: from, PoolSize: 1},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := email.ParseURL(tt.url)
			require.NoError(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseURL (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-secret"
	tests := map[string]struct {
		url     string
		wantErr string
	}{
		"not a URL":                {url: "smtp://user:" + secret + "@relay.example.com:bad port?from=a%40b.c", wantErr: "not a URL"},
		"password breaks the host": {url: "smtp://user:" + secret + "/x@relay.example.com?from=a%40b.c", wantErr: "not a URL"},
		"wrong scheme":             {url: "http://user:" + secret + "@relay.example.com?from=a%40b.c", wantErr: "scheme must be smtp or smtps"},
		"no host":                  {url: "smtp://?from=a%40b.c", wantErr: "no host"},
		"opaque":                   {url: "smtp:user:" + secret + "@relay", wantErr: "no host"},
		"path":                     {url: "smtp://user:" + secret + "@relay.example.com/inbox?from=a%40b.c", wantErr: "a path is not allowed"},
		"port out of range":        {url: "smtp://user:" + secret + "@relay.example.com:70000?from=a%40b.c", wantErr: "port must be 1 to 65535"},
		"empty user":               {url: "smtp://:" + secret + "@relay.example.com?from=a%40b.c", wantErr: "empty user name"},
		"no from":                  {url: "smtp://user:" + secret + "@relay.example.com", wantErr: "from: required"},
		"bad from":                 {url: "smtp://user:" + secret + "@relay.example.com?from=not-an-address", wantErr: "from: not an email address"},
		"bad reply_to":             {url: "smtp://relay.example.com?from=a%40b.c&reply_to=nope", wantErr: "reply_to: not an email address"},
		"bad tls":                  {url: "smtp://relay.example.com?from=a%40b.c&tls=maybe", wantErr: "tls: want starttls, opportunistic or none"},
		"tls with smtps":           {url: "smtps://relay.example.com?from=a%40b.c&tls=none", wantErr: "smtps always uses implicit TLS"},
		"bad auth":                 {url: "smtp://u:" + secret + "@relay.example.com?from=a%40b.c&auth=gssapi", wantErr: "auth: want plain, login or cram-md5"},
		"auth without user":        {url: "smtp://relay.example.com?from=a%40b.c&auth=plain", wantErr: "auth: given without a user"},
		"pool zero":                {url: "smtp://relay.example.com?from=a%40b.c&pool=0", wantErr: "pool: want a number of connections from 1 to 100"},
		"pool huge":                {url: "smtp://relay.example.com?from=a%40b.c&pool=5000", wantErr: "pool: want"},
		"bad idle":                 {url: "smtp://relay.example.com?from=a%40b.c&idle=soon", wantErr: "idle: want a positive duration"},
		"negative idle":            {url: "smtp://relay.example.com?from=a%40b.c&idle=-1s", wantErr: "idle: want a positive duration"},
		"bad insecure_skip_verify": {url: "smtp://relay.example.com?from=a%40b.c&insecure_skip_verify=yes please", wantErr: "insecure_skip_verify: want true or false"},
		"empty ca_file":            {url: "smtp://relay.example.com?from=a%40b.c&ca_file=", wantErr: "ca_file: empty path"},
		"unknown parameter":        {url: "smtp://relay.example.com?from=a%40b.c&poool=3", wantErr: `unknown parameter "poool"`},
		"repeated parameter":       {url: "smtp://relay.example.com?from=a%40b.c&from=c%40d.e", wantErr: "parameter from given 2 times"},
		"fragment":                 {url: "smtp://u:" + secret + "@relay.example.com?from=a%40b.c#frag", wantErr: "a fragment is not allowed"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := email.ParseURL(tt.url)
			require.Error(t, err)
			require.True(t, errors.Is(err, email.ErrInvalidURL), "%v is not ErrInvalidURL", err)
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, err.Error(), "relay.example.com", "the URL is never quoted")
		})
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	cfg, err := email.ParseURL("smtp://user:hunter2@relay.example.com?from=a%40b.c")
	require.NoError(t, err)
	for _, s := range []string{cfg.String(), cfg.GoString(), cfg.LogValue().String()} {
		require.NotContains(t, s, "hunter2")
		require.Contains(t, s, "relay.example.com:587")
	}
}

// FuzzParseURL checks that no account URL makes ParseURL panic, and that a refused one's
// error never quotes the password.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"smtp://user:pass@relay.example.com:587?from=alerts%40example.com&tls=starttls",
		"smtps://user:pass@relay.example.com:465?from=Shop%20%3Cshop%40example.com%3E&pool=2&idle=10s",
		"smtp://127.0.0.1:1025?from=dev%40pulse.localhost&tls=none",
		"smtp://user:pa/ss@relay?from=x",
		"smtp://[::1?from=",
		"smtp://u:p@h?auth=login&ca_file=%2Fx&insecure_skip_verify=1&reply_to=%3C%3E",
	} {
		f.Add(seed, "pass")
	}
	f.Fuzz(func(t *testing.T, raw, password string) {
		if len(password) < 6 || strings.ContainsAny(password, "%@/:?#[]") {
			// Only passwords long and distinctive enough to be looked for.
			password = "Zq7xPw" + password
		}
		raw = strings.Replace(raw, "pass", password, 1)
		cfg, err := email.ParseURL(raw)
		if err != nil {
			require.NotContains(t, err.Error(), password)
			return
		}
		require.NotEmpty(t, cfg.Host)
		require.NotEmpty(t, cfg.From.Address)
		if cfg.Password == password {
			require.NotContains(t, cfg.String(), password)
		}
	})
}
