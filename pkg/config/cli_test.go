package config_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

func TestVariables(t *testing.T) {
	t.Parallel()
	var inspect struct {
		config.Database
		config.Redis
	}
	got, err := config.Variables(&inspect, &config.Redis{})
	require.NoError(t, err)
	want := []config.Variable{
		{Name: "PULSE_DATABASE_URL", Required: true},
		{Name: "PULSE_DATABASE_MAX_CONNS", Default: "8"},
		{Name: "PULSE_DATABASE_MIGRATE", Default: "true"},
		{Name: "PULSE_REDIS_URL", Required: true},
		{Name: "PULSE_REDIS_PREFIX", Default: "pulse"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables, each once (-want +got):\n%s", diff)
	}
}
