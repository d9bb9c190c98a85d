package config

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// Dev configures `pulse dev`, which runs every function in one process. Each function's own
// configuration is read as in a cluster, after DevDefaults fills what a laptop lacks.
type Dev struct {
	// IngestPort is where ingest listens; POST CloudEvents here.
	IngestPort int `envconfig:"PULSE_DEV_INGEST_PORT" default:"8080"`
	// DeliverHighPort is where deliver-high listens.
	DeliverHighPort int `envconfig:"PULSE_DEV_DELIVER_HIGH_PORT" default:"8081"`
	// DeliverLowPort is where deliver-low listens.
	DeliverLowPort int `envconfig:"PULSE_DEV_DELIVER_LOW_PORT" default:"8082"`
	// CronPort is where cron listens for the PingSource events `pulse dev` sends it.
	CronPort int `envconfig:"PULSE_DEV_CRON_PORT" default:"8083"`
	// MetricsPort is where the metrics function serves /metrics and the status page.
	MetricsPort int `envconfig:"PULSE_DEV_METRICS_PORT" default:"8084"`
	// WebhookPort is where the capture webhook receiver listens: send webhooks to
	// http://127.0.0.1:8090/ to see them arrive.
	WebhookPort int `envconfig:"PULSE_DEV_WEBHOOK_PORT" default:"8090"`
	// SMTPPort is where the capture SMTP server listens; `pulse dev` points the email
	// account of its deliver functions at it (PULSE_EMAIL_ACCOUNTS, unless set).
	SMTPPort int `envconfig:"PULSE_DEV_SMTP_PORT" default:"1025"`
	// SMSPort is where the Twilio-shaped SMS capture listens; `pulse dev` points
	// PULSE_SMS_ACCOUNTS at it unless that is set.
	SMSPort int `envconfig:"PULSE_DEV_SMS_PORT" default:"8091"`
	// PushPort is where the FCM-shaped push capture and its token endpoint listen; `pulse dev`
	// points PULSE_PUSH_ACCOUNTS at it, with a service-account key it generates, unless that
	// is set.
	PushPort int `envconfig:"PULSE_DEV_PUSH_PORT" default:"8092"`
	// Manifests is the directory of Knative manifests whose PingSources `pulse dev` runs.
	Manifests string `envconfig:"PULSE_DEV_MANIFESTS" default:"config"`
}

// DevDefaults are the settings `pulse dev` uses when the environment does not set them: no
// ingest authentication, webhooks to local receivers allowed, and a fixed signing secret that
// the capture receiver checks. None of them is fit for a cluster.
var DevDefaults = map[string]string{
	"PULSE_DATABASE_URL":          "postgres://127.0.0.1:5432/pulse?sslmode=disable",
	"PULSE_REDIS_URL":             "redis://127.0.0.1:6379/0",
	"PULSE_INGEST_AUTH":           "none",
	"PULSE_WEBHOOK_SECRET":        "whsec_cHVsc2UtZGV2LXNpZ25pbmcta2V5LW5vdC1hLXNlY3JldA==",
	"PULSE_WEBHOOK_ALLOW_PRIVATE": "true",
	"PULSE_SHUTDOWN_TIMEOUT":      "5s",
}

// SetDefaults sets each variable of defaults that the environment does not set.
func SetDefaults(defaults map[string]string) error {
	for k, v := range defaults {
		if _, ok := os.LookupEnv(k); !ok {
			if err := os.Setenv(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Client configures the `pulse` commands that talk to a running ingest function.
type Client struct {
	// URL is the ingest function's base URL.
	URL string `envconfig:"PULSE_URL" default:"http://127.0.0.1:8080"`
	// Token is the bearer token sent to ingest; empty sends none.
	Token string `envconfig:"PULSE_TOKEN" secret:"true"`
}

// Variable is one environment variable a configuration struct reads.
type Variable struct {
	// Name is the variable's name, e.g. PULSE_DATABASE_URL.
	Name string
	// Default is the value used when the variable is not set; empty for none.
	Default string
	// Required is set when the variable has no default and must be set.
	Required bool
}

// Variables lists the environment variables specs (pointers to configuration structs) read,
// each once, in the order of the structs' fields: what a command's help shows.
func Variables(specs ...any) ([]Variable, error) {
	var out []Variable
	seen := map[string]bool{}
	for _, spec := range specs {
		var buf bytes.Buffer
		const format = "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_required .}}\n{{end}}"
		if err := envconfig.Usagef("", spec, &buf, format); err != nil {
			return nil, fmt.Errorf("list variables of %T: %w", spec, err)
		}
		for line := range strings.Lines(buf.String()) {
			f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
			if len(f) != 3 || seen[f[0]] {
				continue
			}
			seen[f[0]] = true
			out = append(out, Variable{Name: f[0], Default: f[1], Required: f[2] == "true"})
		}
	}
	return out, nil
}
