package config_test

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// malformedSecrets gives, for every secret variable, values that must not load or not open,
// each carrying a marker that no error may show. A new secret variable needs cases here:
// TestConfigErrorsNeverEchoSecrets checks the list against the secret tags.
var malformedSecrets = map[string][]string{
	"PULSE_INGEST_TOKENS": {
		"s3cret-token-only",
		"good=urn:a;s3cret-token-no-prefix=",
		"good=urn:a\ns3cret-token-without-equals",
		"=s3cret-prefix-without-token",
	},
	"PULSE_WEBHOOK_SECRET": {"s3cret-no-whsec-prefix", "wh_s3cret-close-but-no"},
	"PULSE_DATABASE_URL": {
		"postgres://pulse:s3cret-pw-port@db:notaport/pulse",
		"postgres://pulse:s3cret-pw-bracket@[::1/pulse",
		"postgres://pulse:s3cret-pw-sslmode@db/pulse?sslmode=bogus",
	},
	"PULSE_REDIS_URL": {
		"redis://:s3cret-pw-db@redis:6379/notadb",
		"redis://u:s3cret-pw-bracket@[bad",
		"ftp://u:s3cret-pw-scheme@redis:6379/0",
	},
	"PULSE_TOKEN": {"s3cret-client-token with\nlines"},
	"PULSE_EMAIL_ACCOUNTS": {
		"s3cret-account-without-name",
		"primary=smtp://u:s3cret-pw-bracket@[relay",
		"primary=smtp://u:s3cret-pw-rate@relay:587?from=a%40example.com&rate=s3cret-rate",
		"primary=smtp://u:s3cret-pw-nofrom@relay:587",
	},
	"PULSE_SMS_ACCOUNTS": {
		"primary=twilio://AC1:s3cret-token-bracket@[api",
		"primary=twilio://AC1:s3cret-token-nofrom@api.twilio.com",
	},
	"PULSE_PUSH_ACCOUNTS": {
		"s3cret-push-without-name",
		"primary=fcm://u:s3cret-pw-bracket@[fcm",
	},
}

// validEnv lets every struct of config.All load, so that each case fails only by its secret.
var validEnv = map[string]string{
	"PULSE_DATABASE_URL":   "postgres://pulse@127.0.0.1:5432/pulse",
	"PULSE_REDIS_URL":      "redis://127.0.0.1:6379/0",
	"PULSE_INGEST_TOKENS":  "valid=urn:valid",
	"PULSE_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	"PULSE_PRIORITY":       "high",
	"K_SINK":               "http://deliver.pulse.svc.cluster.local",
}

// TestConfigErrorsNeverEchoSecrets loads every configuration struct with each malformed
// secret value, opens the datastores with the malformed URLs as the functions do, and scans
// every error for the secret. Not parallel: t.Setenv changes the process's environment.
func TestConfigErrorsNeverEchoSecrets(t *testing.T) {
	tagged := map[string]bool{}
	for _, cfg := range config.All {
		for name := range config.SecretNames(cfg) {
			tagged[name] = true
		}
	}
	var want, got []string
	for name := range malformedSecrets {
		want = append(want, name)
	}
	for name := range tagged {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	require.Empty(t, cmp.Diff(want, got), "secret variables (-with cases +tagged secret)")

	for name, values := range malformedSecrets {
		for _, value := range values {
			t.Run(name+"="+marker(value), func(t *testing.T) {
				for k, v := range validEnv {
					t.Setenv(k, v)
				}
				t.Setenv(name, value)
				var errs []error
				for _, cfg := range config.All {
					if !config.SecretNames(cfg)[name] {
						continue
					}
					fresh := reflect.New(reflect.TypeOf(cfg).Elem()).Interface()
					errs = append(errs, config.Load(fresh))
				}
				switch name {
				case "PULSE_DATABASE_URL":
					_, err := store.Open(context.Background(), config.Database{URL: value})
					require.Error(t, err)
					errs = append(errs, err)
				case "PULSE_REDIS_URL":
					_, err := queue.Open(config.Redis{URL: value})
					require.Error(t, err)
					errs = append(errs, err)
				case "PULSE_EMAIL_ACCOUNTS", "PULSE_SMS_ACCOUNTS", "PULSE_PUSH_ACCOUNTS":
					// Some account URLs load and are refused only when deliver builds their
					// providers: that error must not show the secret either.
					var cfg config.Deliver
					if err := config.Load(&cfg); err == nil {
						providers, err := delivery.Providers(cfg, delivery.ProviderDeps{Redis: redis.NewClient(&redis.Options{})})
						if err == nil {
							_ = delivery.CloseProviders(providers)
						}
						require.Error(t, err, "a malformed %s must not build", name)
						errs = append(errs, err)
					}
				case "PULSE_INGEST_TOKENS", "PULSE_WEBHOOK_SECRET":
					failed := false
					for _, err := range errs {
						if err != nil {
							failed = true
							require.ErrorContains(t, err, name, "the error names the variable")
						}
					}
					require.True(t, failed, "a malformed %s must not load", name)
				}
				for _, err := range errs {
					if err == nil {
						continue
					}
					require.NotContains(t, err.Error(), marker(value))
					require.NotContains(t, err.Error(), value)
				}
			})
		}
	}
}

// marker is the secret part of a malformed value: the word starting with "s3cret".
func marker(value string) string {
	i := strings.Index(value, "s3cret")
	end := strings.IndexAny(value[i:], "@= \n")
	if end < 0 {
		return value[i:]
	}
	return value[i : i+end]
}
