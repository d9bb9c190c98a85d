package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

// TestCronRefuses sets environment variables, so it cannot run in parallel with other tests.
// TestDefaults checks the values it has when they are not set.
func TestCronRefuses(t *testing.T) {
	t.Setenv("PULSE_DATABASE_URL", "postgres://127.0.0.1/pulse")
	t.Setenv("PULSE_REDIS_URL", "redis://127.0.0.1:6379/0")
	for name, value := range map[string]string{
		"PULSE_CRON_BATCH_SIZE":       "0",
		"PULSE_CRON_BUDGET":           "60s", // not shorter than PULSE_HTTP_WRITE_TIMEOUT
		"PULSE_RECOVER_QUEUED_AFTER":  "0s",
		"PULSE_RETENTION":             "-1h",
		"PULSE_DEAD_LETTER_RETENTION": "-1h",
		"PULSE_DEAD_LETTER_MAX_LEN":   "-1",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			var cfg config.Cron
			require.ErrorContains(t, config.Load(&cfg), name)
		})
	}
}
