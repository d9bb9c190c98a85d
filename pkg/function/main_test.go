package function

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

// testConfig is a process configuration as pkg/config's are: config.Log embedded, beside
// settings of its own.
type testConfig struct {
	config.Log
	Sink string `envconfig:"PULSE_FUNCTION_TEST_SINK" required:"true"`
}

type ctxKey struct{}

func TestRun(t *testing.T) {
	errRun := errors.New("sink unreachable")
	for name, tc := range map[string]struct {
		env     map[string]string
		runErr  error
		wantErr string
		wantRun bool
		wantLog []string
		noLog   []string
	}{
		"loads the configuration and logs as the function": {
			env:     map[string]string{"PULSE_FUNCTION_TEST_SINK": "http://sink", "PULSE_LOG_LEVEL": "debug"},
			wantRun: true,
			wantLog: []string{`"function":"fn"`, `"level":"DEBUG"`, `"msg":"running"`, `"sink":"http://sink"`},
		},
		"logs at the configured level": {
			env:     map[string]string{"PULSE_FUNCTION_TEST_SINK": "http://sink", "PULSE_LOG_LEVEL": "warn"},
			wantRun: true,
			noLog:   []string{`"msg":"running"`},
		},
		"returns what run returns": {
			env:     map[string]string{"PULSE_FUNCTION_TEST_SINK": "http://sink"},
			runErr:  errRun,
			wantErr: errRun.Error(),
			wantRun: true,
		},
		"refuses a configuration that does not load, before running": {
			env:     map[string]string{},
			wantErr: "load configuration: required key PULSE_FUNCTION_TEST_SINK missing value",
		},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			ctx := context.WithValue(t.Context(), ctxKey{}, "caller's")
			ran := false
			err := Run(ctx, "fn", &out, func(ctx context.Context, cfg testConfig, logger *slog.Logger) error {
				ran = true
				require.Equal(t, "caller's", ctx.Value(ctxKey{}), "run gets the caller's context")
				require.Equal(t, tc.env["PULSE_FUNCTION_TEST_SINK"], cfg.Sink)
				logger.Debug("running", "sink", cfg.Sink)
				return tc.runErr
			})
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantRun, ran)
			for _, s := range tc.wantLog {
				require.Contains(t, out.String(), s)
			}
			for _, s := range tc.noLog {
				require.NotContains(t, out.String(), s)
			}
		})
	}
}
