package devping_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/devping"
	"github.com/pulse-knative/pulse/pkg/scheduler"
)

const pingSources = `# The cron function's schedules.
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: pulse-release
  namespace: pulse
spec:
  schedule: "*/10 * * * * *"
  contentType: application/json
  data: '{"job":"release"}'
  sink:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: cron
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: cron
spec:
  template:
    spec:
      containers:
        - image: ko://github.com/pulse-knative/pulse/functions/cron
---
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: pulse-purge
spec:
  schedule: "@hourly"
  timezone: Europe/Paris
  contentType: application/json
  dataBase64: eyJqb2IiOiJwdXJnZSJ9
`

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

func TestLoadPingSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "cron.yaml", pingSources)
	writeFile(t, dir, "a-recover.yml", `
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: pulse-recover, namespace: pulse}
spec: {schedule: "* * * * *", contentType: application/json, data: '{"job":"recover"}'}
`)
	writeFile(t, dir, "notes.txt", "kind: PingSource\n")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700))

	pings, err := devping.LoadPingSources(dir)
	require.NoError(t, err)
	want := []devping.Ping{
		{Name: "pulse-recover", Namespace: "pulse", File: filepath.Join(dir, "a-recover.yml"), Schedule: "* * * * *",
			ContentType: "application/json", Data: []byte(`{"job":"recover"}`)},
		{Name: "pulse-release", Namespace: "pulse", File: filepath.Join(dir, "cron.yaml"), Schedule: "*/10 * * * * *",
			ContentType: "application/json", Data: []byte(`{"job":"release"}`)},
		{Name: "pulse-purge", Namespace: "default", File: filepath.Join(dir, "cron.yaml"), Schedule: "@hourly",
			Timezone: "Europe/Paris", ContentType: "application/json", Data: []byte(`{"job":"purge"}`)},
	}
	if diff := cmp.Diff(want, pings, cmpopts.IgnoreUnexported(devping.Ping{})); diff != "" {
		t.Errorf("LoadPingSources (-want +got):\n%s", diff)
	}
	require.Equal(t, "/apis/v1/namespaces/pulse/pingsources/pulse-release", pings[1].Source())

	at := time.Date(2026, 3, 1, 12, 0, 3, 0, time.UTC)
	require.Equal(t, at.Add(7*time.Second), pings[1].Next(at), "a seconds field")
	require.Equal(t, time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC), pings[0].Next(at), "five fields: every minute")
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 3, 1, 14, 0, 0, 0, paris), pings[2].Next(at.In(paris)).In(paris))
}

func TestLoadPingSourcesErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"bad schedule": {`{apiVersion: sources.knative.dev/v1, kind: PingSource, metadata: {name: p}, spec: {schedule: "every now and then"}}`,
			`PingSource p: spec.schedule "every now and then"`},
		"no schedule": {`{apiVersion: sources.knative.dev/v1, kind: PingSource, metadata: {name: p}, spec: {}}`,
			"PingSource p has no spec.schedule"},
		"no name": {`{apiVersion: sources.knative.dev/v1, kind: PingSource, spec: {schedule: "* * * * *"}}`,
			"PingSource has no metadata.name"},
		"old version": {`{apiVersion: sources.knative.dev/v1alpha1, kind: PingSource, metadata: {name: p}}`,
			`PingSource apiVersion "sources.knative.dev/v1alpha1"`},
		"both data": {`{apiVersion: sources.knative.dev/v1, kind: PingSource, metadata: {name: p}, spec: {schedule: "@daily", data: x, dataBase64: eA==}}`,
			"sets both spec.data and spec.dataBase64"},
		"bad zone": {`{apiVersion: sources.knative.dev/v1, kind: PingSource, metadata: {name: p}, spec: {schedule: "@daily", timezone: Mars/Olympus}}`,
			`spec.timezone "Mars/Olympus"`},
		"not yaml": {"kind: [", "document 1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "p.yaml", "---\n"+tc.yaml+"\n")
			_, err := devping.LoadPingSources(dir)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, filepath.Join(dir, "p.yaml"))
		})
	}
	_, err := devping.LoadPingSources(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}

// TestRunPings plays a PingSource that fires every second and waits for the sink to receive
// its events.
func TestRunPings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "ping.yaml", `
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: pulse-release, namespace: pulse}
spec: {schedule: "*/1 * * * * *", contentType: application/json, data: '{"job":"release"}'}
`)
	pings, err := devping.LoadPingSources(dir)
	require.NoError(t, err)

	type received struct {
		e   event.Event
		at  time.Time
		err error
	}
	got := make(chan received, 16)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		e := event.New()
		e.SetID(r.Header.Get("Ce-Id"))
		e.SetType(r.Header.Get("Ce-Type"))
		e.SetSource(r.Header.Get("Ce-Source"))
		if err == nil {
			err = e.SetData(r.Header.Get("Content-Type"), body)
		}
		if err == nil {
			err = e.Validate()
		}
		if ts, terr := time.Parse(time.RFC3339Nano, r.Header.Get("Ce-Time")); terr == nil {
			e.SetTime(ts)
		}
		select {
		case got <- received{e: e, at: time.Now(), err: err}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(sink.Close)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- devping.RunPings(ctx, pings, sink.URL, sink.Client(), slog.New(slog.DiscardHandler))
	}()

	var events []received
	for len(events) < 2 {
		select {
		case r := <-got:
			require.NoError(t, r.err)
			events = append(events, r)
		case <-time.After(10 * time.Second):
			t.Fatalf("the sink received %d pings in 10 s", len(events))
		}
	}
	cancel()
	require.NoError(t, <-done)

	for _, r := range events {
		require.Equal(t, scheduler.TypePing, r.e.Type())
		require.Equal(t, "/apis/v1/namespaces/pulse/pingsources/pulse-release", r.e.Source())
		require.JSONEq(t, `{"job":"release"}`, string(r.e.Data()))
		job, ferr := scheduler.JobOf(r.e)
		require.Nil(t, ferr)
		require.Equal(t, scheduler.JobRelease, job)
		require.Zero(t, r.e.Time().Nanosecond(), "fired on a whole second")
		require.False(t, r.at.Before(r.e.Time()), "not before its time")
	}
	require.NotEqual(t, events[0].e.ID(), events[1].e.ID())
	require.Equal(t, time.Second, events[1].e.Time().Sub(events[0].e.Time()))
}

func TestRunPingsBadSink(t *testing.T) {
	t.Parallel()
	err := devping.RunPings(context.Background(), nil, "not a url", http.DefaultClient, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "not an http(s) URL")
	err = devping.RunPings(context.Background(), []devping.Ping{{Name: "handmade", Schedule: "@daily"}}, "http://127.0.0.1:1/",
		http.DefaultClient, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "was not loaded by LoadPingSources")
}

// TestLoadClusterPingSources reads the cluster's own PingSources, the ones `pulse dev` plays:
// one per job, each naming a job the cron function knows.
func TestLoadClusterPingSources(t *testing.T) {
	t.Parallel()
	pings, err := devping.LoadPingSources(filepath.Join("..", "..", "config"))
	require.NoError(t, err)
	jobs := map[string]string{}
	for _, p := range pings {
		e := event.New()
		e.SetType(scheduler.TypePing)
		e.SetDataContentType(p.ContentType)
		e.DataEncoded = p.Data
		job, ferr := scheduler.JobOf(e)
		require.Nil(t, ferr, p.Name)
		jobs[job] = p.Schedule
	}
	require.ElementsMatch(t, scheduler.Jobs, keys(jobs))
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, p := range pings {
		if string(p.Data) == `{"job":"release"}` {
			require.Equal(t, at.Add(10*time.Second), p.Next(at), "release every 10 s")
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
