package devping_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pulse-knative/pulse/internal/devping"
)

// LoadPingSources reads the cluster's PingSources; `pulse dev` then plays them against its own
// cron function with RunPings(ctx, pings, cronURL, client, logger).
func ExampleLoadPingSources() {
	dir, err := os.MkdirTemp("", "pingsources")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	manifest := `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: cron-release, namespace: pulse}
spec:
  schedule: "*/10 * * * * *"
  contentType: application/json
  data: '{"job":"release"}'
`
	if err := os.WriteFile(filepath.Join(dir, "40-cron-schedules.yaml"), []byte(manifest), 0o600); err != nil {
		panic(err)
	}
	pings, err := devping.LoadPingSources(dir)
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 4, 0, time.UTC)
	for _, p := range pings {
		fmt.Println(p.Name, p.Source(), string(p.Data), p.Next(at).Format(time.TimeOnly))
	}
	// Output:
	// cron-release /apis/v1/namespaces/pulse/pingsources/cron-release {"job":"release"} 12:00:10
}
