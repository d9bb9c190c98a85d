package devping

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/pulse-knative/pulse/pkg/scheduler"
)

// PingSource's API version and kind, as the cluster's manifests name them.
const (
	pingSourceAPIVersion = "sources.knative.dev/v1"
	pingSourceKind       = "PingSource"
)

// pingTimeout bounds one POST to the sink; a job's run is bounded well below it.
const pingTimeout = 2 * time.Minute

// scheduleParser reads schedules as PingSource does: five cron fields with an optional leading
// seconds field, or a descriptor such as @hourly; a CRON_TZ= prefix names a time zone.
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month |
	cron.Dow | cron.Descriptor)

// Ping is one PingSource: when it fires and the event it sends.
type Ping struct {
	// Name and Namespace are the PingSource's; they make the event's source.
	Name, Namespace string
	// File is the YAML file the PingSource was read from.
	File string
	// Schedule is the cron schedule, in Timezone.
	Schedule string
	// Timezone is the IANA time zone the schedule is read in; empty means UTC.
	Timezone string
	// ContentType is the event's datacontenttype; empty sends none.
	ContentType string
	// Data is the event's data.
	Data []byte

	schedule cron.Schedule
}

// Source returns the event source a PingSource's events carry.
func (p Ping) Source() string {
	return "/apis/v1/namespaces/" + p.Namespace + "/pingsources/" + p.Name
}

// Next returns the first time after t the ping fires.
func (p Ping) Next(t time.Time) time.Time { return p.schedule.Next(t) }

// pingSourceDoc is the part of a PingSource manifest the local runner uses.
type pingSourceDoc struct {
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Schedule    string `yaml:"schedule"`
		Timezone    string `yaml:"timezone"`
		ContentType string `yaml:"contentType"`
		Data        string `yaml:"data"`
		DataBase64  string `yaml:"dataBase64"`
	} `yaml:"spec"`
}

// LoadPingSources reads the PingSources (apiVersion sources.knative.dev/v1, kind PingSource)
// of the YAML files (.yaml, .yml) in dir, in file order then document order. Documents of other
// kinds are skipped; a PingSource that the cluster would reject (no name or schedule, a
// schedule that does not parse, both data and dataBase64) is an error naming its file.
func LoadPingSources(dir string) ([]Ping, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read PingSources: %w", err)
	}
	var pings []Ping
	for _, f := range files {
		ext := filepath.Ext(f.Name())
		if f.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, f.Name())
		got, err := readPingSources(path)
		if err != nil {
			return nil, err
		}
		pings = append(pings, got...)
	}
	return pings, nil
}

func readPingSources(path string) ([]Ping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read PingSources: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var pings []Ping
	for i := 0; ; i++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return pings, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s, document %d: %w", path, i+1, err)
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		// A document that is not a mapping (empty, a list) is not a manifest: skip it.
		if node.Kind != yaml.DocumentNode || len(node.Content) == 0 || node.Content[0].Kind != yaml.MappingNode {
			continue
		}
		if err := node.Decode(&head); err != nil {
			return nil, fmt.Errorf("read %s, document %d: %w", path, i+1, err)
		}
		if head.Kind != pingSourceKind {
			continue
		}
		if head.APIVersion != pingSourceAPIVersion {
			return nil, fmt.Errorf("read %s, document %d: PingSource apiVersion %q: want %s", path, i+1, head.APIVersion, pingSourceAPIVersion)
		}
		var doc pingSourceDoc
		if err := node.Decode(&doc); err != nil {
			return nil, fmt.Errorf("read %s, document %d: %w", path, i+1, err)
		}
		p, err := pingOf(doc, path)
		if err != nil {
			return nil, fmt.Errorf("read %s, document %d: %w", path, i+1, err)
		}
		pings = append(pings, p)
	}
}

func pingOf(doc pingSourceDoc, path string) (Ping, error) {
	p := Ping{Name: doc.Metadata.Name, Namespace: doc.Metadata.Namespace, File: path, Schedule: doc.Spec.Schedule,
		Timezone: doc.Spec.Timezone, ContentType: doc.Spec.ContentType}
	if p.Name == "" {
		return p, errors.New("PingSource has no metadata.name")
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if p.Schedule == "" {
		return p, fmt.Errorf("PingSource %s has no spec.schedule", p.Name)
	}
	spec := p.Schedule
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil {
			return p, fmt.Errorf("PingSource %s: spec.timezone %q: %w", p.Name, p.Timezone, err)
		}
		spec = "CRON_TZ=" + p.Timezone + " " + spec
	}
	s, err := scheduleParser.Parse(spec)
	if err != nil {
		return p, fmt.Errorf("PingSource %s: spec.schedule %q: %w", p.Name, p.Schedule, err)
	}
	p.schedule = s
	switch {
	case doc.Spec.Data != "" && doc.Spec.DataBase64 != "":
		return p, fmt.Errorf("PingSource %s sets both spec.data and spec.dataBase64", p.Name)
	case doc.Spec.DataBase64 != "":
		if p.Data, err = base64.StdEncoding.DecodeString(doc.Spec.DataBase64); err != nil {
			return p, fmt.Errorf("PingSource %s: spec.dataBase64: %w", p.Name, err)
		}
	case doc.Spec.Data != "":
		p.Data = []byte(doc.Spec.Data)
	}
	return p, nil
}

// RunPings plays pings until ctx is done: at each time a ping's schedule names, it POSTs the
// event a PingSource would (type dev.knative.sources.ping, binary mode, the ping's data) to
// sinkURL with client. A tick does not wait for the previous one's answer, as in the cluster;
// the cron jobs are safe to run twice at once. Ticks missed while not running are not made up:
// the jobs catch up by themselves. It returns once ctx is done and the POSTs in flight have
// ended.
func RunPings(ctx context.Context, pings []Ping, sinkURL string, client *http.Client, logger *slog.Logger) error {
	u, err := url.Parse(sinkURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("run PingSources: sink %q is not an http(s) URL", sinkURL)
	}
	for _, p := range pings {
		if p.schedule == nil {
			return fmt.Errorf("run PingSources: %s was not loaded by LoadPingSources", p.Name)
		}
	}
	var wg sync.WaitGroup
	for _, p := range pings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			playPing(ctx, p, sinkURL, client, logger.With("pingsource", p.Name, "schedule", p.Schedule), &wg)
		}()
	}
	logger.Info("running PingSources", "count", len(pings))
	<-ctx.Done()
	wg.Wait()
	return nil
}

func playPing(ctx context.Context, p Ping, sinkURL string, client *http.Client, logger *slog.Logger, wg *sync.WaitGroup) {
	next := p.Next(time.Now())
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		at := next
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendPing(ctx, p, at, sinkURL, client, logger)
		}()
		next = p.Next(at)
	}
}

// sendPing POSTs one ping event and logs what came of it.
func sendPing(ctx context.Context, p Ping, at time.Time, sinkURL string, client *http.Client, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sinkURL, bytes.NewReader(p.Data))
	if err != nil {
		logger.Error("ping not sent", "error", err)
		return
	}
	id := uuid.NewString()
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", scheduler.TypePing)
	req.Header.Set("Ce-Source", p.Source())
	req.Header.Set("Ce-Time", at.UTC().Format(time.RFC3339Nano))
	if p.ContentType != "" {
		req.Header.Set("Content-Type", p.ContentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("ping not delivered", "ce_id", id, "error", err)
		}
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // so the connection is reused
	if resp.StatusCode/100 != 2 {
		// The sink logs why; its answer may hold what it was sent.
		logger.Warn("ping answered with an error", "ce_id", id, "status", resp.StatusCode)
		return
	}
	logger.Debug("ping delivered", "ce_id", id, "status", resp.StatusCode)
}
