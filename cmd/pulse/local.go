package main

import (
	"context"
	"log/slog"
	"slices"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/function"
)

// datastoreVars name the local datastores' URLs, which inspect and deadletter default to as
// pulse dev does.
var datastoreVars = []string{"PULSE_DATABASE_URL", "PULSE_REDIS_URL"}

// devDefaults returns the settings of config.DevDefaults named (all without names).
func devDefaults(names ...string) map[string]string {
	out := map[string]string{}
	for k, v := range config.DevDefaults {
		if len(names) == 0 || slices.Contains(names, k) {
			out[k] = v
		}
	}
	return out
}

// loadLocal loads cfg from the environment as config.Load does, except that the variables
// named that the environment does not set take the values pulse dev uses: an operator command
// reads the local datastores unless told otherwise.
func loadLocal(cfg any, names ...string) error {
	if err := config.SetDefaults(devDefaults(names...)); err != nil {
		return err
	}
	return config.Load(cfg)
}

// openDatastores opens the datastores an operator command reads: those pulse dev uses unless
// the environment names others. It neither waits for PostgreSQL nor migrates it: the command
// reports what it finds, and pulse migrate migrates.
func openDatastores(ctx context.Context) (function.Datastores, error) {
	var cfg struct {
		config.Database
		config.Redis
	}
	if err := loadLocal(&cfg, datastoreVars...); err != nil {
		return function.Datastores{}, err
	}
	cfg.Migrate = false
	return function.OpenDatastores(ctx, cfg.Database, cfg.Redis, slog.New(slog.DiscardHandler))
}
