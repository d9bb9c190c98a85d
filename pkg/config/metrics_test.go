package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMetricsValidate(t *testing.T) {
	t.Parallel()
	valid := func() Metrics {
		return Metrics{Server: Server{WriteTimeout: time.Minute}, ScrapeTimeout: 5 * time.Second,
			FailureWindow: 15 * time.Minute, PastDueAfter: time.Minute, RollupInterval: time.Second, RollupBatch: 10,
			Group: "g"}
	}
	for name, tc := range map[string]struct {
		mod     func(*Metrics)
		wantErr string
	}{
		"defaults":                  {mod: func(*Metrics) {}},
		"no past-due grace":         {mod: func(c *Metrics) { c.PastDueAfter = 0 }},
		"no scrape timeout":         {mod: func(c *Metrics) { c.ScrapeTimeout = 0 }, wantErr: "PULSE_METRICS_SCRAPE_TIMEOUT"},
		"timeout past write budget": {mod: func(c *Metrics) { c.ScrapeTimeout = time.Minute }, wantErr: "PULSE_HTTP_WRITE_TIMEOUT"},
		"window under a minute":     {mod: func(c *Metrics) { c.FailureWindow = 30 * time.Second }, wantErr: "PULSE_METRICS_FAILURE_WINDOW"},
		"negative past-due grace":   {mod: func(c *Metrics) { c.PastDueAfter = -time.Second }, wantErr: "PULSE_METRICS_PAST_DUE_AFTER"},
		"no roll-up batch":          {mod: func(c *Metrics) { c.RollupBatch = 0 }, wantErr: "PULSE_METRICS_ROLLUP_BATCH"},
		"no roll-up interval":       {mod: func(c *Metrics) { c.RollupInterval = 0 }, wantErr: "PULSE_METRICS_ROLLUP_INTERVAL"},
		"no group":                  {mod: func(c *Metrics) { c.Group = "" }, wantErr: "PULSE_STREAM_GROUP"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.mod(&cfg)
			err := cfg.validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
