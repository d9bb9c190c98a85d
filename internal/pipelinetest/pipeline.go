package pipelinetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/pulsetest"
)

// Secret signs the pipeline's webhooks.
var Secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("pulse-pipeline-test-signing-key!"))

// Commands the pipeline builds, by process name.
var commands = map[string]string{
	"ingest":        "./functions/ingest",
	"deliver-high":  "./functions/deliver-high",
	"deliver-low":   "./functions/deliver-low",
	"stream-source": "./cmd/stream-source",
	"cron":          "./functions/cron",
	"pulse":         "./cmd/pulse",
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Main runs the package's tests and removes the binaries the pipeline built. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles every command once per test binary.
func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("find module root: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		buildDir, buildErr = os.MkdirTemp("", "pulse-pipeline-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + "/"}
		for _, pkg := range commands {
			if _, err := os.Stat(filepath.Join(root, pkg, "main.go")); err == nil {
				args = append(args, pkg)
			}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// Options configures a pipeline.
type Options struct {
	// DatabaseURL and RedisURL name the datastores; Prefix isolates the Redis keys. Left
	// empty, they are the test's own schema and key prefix on the shared test datastores
	// (internal/pulsetest).
	DatabaseURL, RedisURL, Prefix string
	// Env adds or overrides environment variables of every process.
	Env map[string]string
	// Cron runs functions/cron and ticks its jobs every CronEvery (default 500ms).
	Cron      bool
	CronEvery time.Duration
	// Channels starts the email, SMS and push captures `pulse dev` runs, gives the deliver
	// processes provider accounts pointing at them, and makes ingest accept every channel.
	Channels bool
	// ChannelRate, when set, is the rate limit ("10/s") of each of those accounts.
	ChannelRate string
	// DeliverHigh is how many deliver-high processes run (default 1), as pods of one
	// Service: each after the first is fed by its own stream-source process, another consumer
	// of the same group, and named deliver-high-2, stream-source-high-2 and so on.
	DeliverHigh int
}

// Pipeline is a running Pulse.
type Pipeline struct {
	t        testing.TB
	opts     Options
	bin      string
	procs    map[string]*Process
	Receiver *capture.Webhooks
	receiver *Server
	// Channels are the email, SMS and push captures, when Options.Channels is set.
	Channels *capture.Channels
	cron     *ticker
}

// Start builds and starts every process and waits until each HTTP function is ready.
func Start(t testing.TB, opts Options) *Pipeline {
	t.Helper()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = pulsetest.DatabaseURL(t)
	}
	if opts.RedisURL == "" {
		opts.RedisURL, opts.Prefix = pulsetest.Redis(t)
	}
	p := &Pipeline{t: t, opts: opts, bin: build(t), procs: map[string]*Process{}}
	p.Receiver = capture.NewWebhooks(Secret, nil)
	p.receiver = NewServer(t, p.Receiver)

	common := map[string]string{
		"PULSE_DATABASE_URL":          opts.DatabaseURL,
		"PULSE_REDIS_URL":             opts.RedisURL,
		"PULSE_REDIS_PREFIX":          opts.Prefix,
		"PULSE_LOG_LEVEL":             "warn",
		"PULSE_SHUTDOWN_TIMEOUT":      "5s",
		"PULSE_INGEST_AUTH":           "none",
		"PULSE_WEBHOOK_SECRET":        Secret,
		"PULSE_WEBHOOK_ALLOW_PRIVATE": "true",
		"PULSE_SEND_TIMEOUT":          "2s",
		"PULSE_LEASE":                 "10s",
		"PULSE_SINK_TIMEOUT":          "5s",
		"PULSE_STREAM_RECLAIM_IDLE":   "6s",
		"PULSE_STREAM_CONCURRENCY":    "32",
	}
	if opts.Channels {
		p.Channels = startChannels(t)
		for k, v := range p.Channels.Accounts {
			if opts.ChannelRate != "" {
				v += "&rate=" + opts.ChannelRate
			}
			common[k] = v
		}
		common["PULSE_CHANNELS"] = "webhook,email,sms,push"
	}
	for k, v := range opts.Env {
		common[k] = v
	}
	names := []string{"ingest", "deliver-high", "deliver-low"}
	if opts.Cron {
		names = append(names, "cron")
	}
	for _, name := range names {
		p.procs[name] = p.newProcess(name, name, pulsetest.FreePort(t), common, nil)
	}
	// Each deliver process gets its stream source: name, priority, deliver process.
	sources := [][3]string{{"stream-source-high", "high", "deliver-high"}, {"stream-source-low", "low", "deliver-low"}}
	for i := 2; i <= opts.DeliverHigh; i++ {
		name := fmt.Sprintf("deliver-high-%d", i)
		p.procs[name] = p.newProcess(name, "deliver-high", pulsetest.FreePort(t), common, nil)
		names = append(names, name)
		sources = append(sources, [3]string{fmt.Sprintf("stream-source-high-%d", i), "high", name})
	}
	for _, src := range sources {
		sink := fmt.Sprintf("http://127.0.0.1:%d/", p.procs[src[2]].Port)
		p.procs[src[0]] = p.newProcess(src[0], "stream-source", 0, common,
			map[string]string{"PULSE_PRIORITY": src[1], "K_SINK": sink, "PULSE_STREAM_CONSUMER": src[0]})
	}
	// Start the functions first so their migrations run before anything else.
	for _, name := range names {
		p.procs[name].Start()
	}
	for _, src := range sources {
		p.procs[src[0]].Start()
	}
	if opts.Cron {
		every := opts.CronEvery
		if every == 0 {
			every = 500 * time.Millisecond
		}
		p.cron = startTicker(t, fmt.Sprintf("http://127.0.0.1:%d/", p.procs["cron"].Port), every)
	}
	return p
}

// IngestURL is the base URL of the ingest function.
func (p *Pipeline) IngestURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", p.procs["ingest"].Port)
}

// Command returns the pipeline's build of a command (such as "pulse"), run with args against
// the pipeline's ingest (PULSE_URL) and datastores.
func (p *Pipeline) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Env = append(os.Environ(), "PULSE_URL="+p.IngestURL(), "PULSE_DATABASE_URL="+p.opts.DatabaseURL,
		"PULSE_REDIS_URL="+p.opts.RedisURL, "PULSE_REDIS_PREFIX="+p.opts.Prefix)
	return cmd
}

// ReceiverURL is the URL webhooks should be sent to.
func (p *Pipeline) ReceiverURL() string { return p.receiver.URL() + "/hook" }

// ReceiverServer returns the receiver's server, to stop and restart it.
func (p *Pipeline) ReceiverServer() *Server { return p.receiver }

// Process returns a process by name: ingest, deliver-high, deliver-low, cron,
// stream-source-high or stream-source-low (and deliver-high-2, stream-source-high-2 … with
// Options.DeliverHigh).
func (p *Pipeline) Process(name string) *Process {
	proc, ok := p.procs[name]
	if !ok {
		p.t.Fatalf("no process %q", name)
	}
	return proc
}

// PauseCron stops ticking the cron jobs, as when PingSource ticks are missed.
func (p *Pipeline) PauseCron() { p.cron.pause(true) }

// ResumeCron ticks the cron jobs again.
func (p *Pipeline) ResumeCron() { p.cron.pause(false) }

func (p *Pipeline) newProcess(name, command string, port int, common, extra map[string]string) *Process {
	env := os.Environ()
	for k, v := range common {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	if port != 0 {
		env = append(env, "PORT="+strconv.Itoa(port))
	}
	proc := &Process{t: p.t, Name: name, Port: port, path: filepath.Join(p.bin, command), env: env,
		log: filepath.Join(p.t.TempDir(), name+".log")}
	p.t.Cleanup(func() {
		proc.Stop()
		if p.t.Failed() {
			proc.dumpLog()
		}
	})
	return proc
}

// Process is one running function or stream source.
type Process struct {
	t    testing.TB
	Name string
	Port int
	path string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process and, for HTTP functions, waits until /readyz answers 200.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("open log of %s: %v", p.Name, err)
	}
	cmd := exec.Command(p.path)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	if p.Port == 0 {
		return
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", p.Port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			p.dumpLog()
			p.t.Fatalf("%s exited while starting", p.Name)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s not ready after 60s", p.Name)
}

// Kill sends SIGKILL, as when a pod dies, and waits for the process to go.
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM, as Kubernetes does, and waits for the process to finish.
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *Process) dumpLog() {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	p.t.Logf("last lines of %s:\n%s", p.Name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
}

// Server serves a handler on a fixed 127.0.0.1 port and can be stopped and started again on
// the same port, as a receiver that goes down and comes back.
type Server struct {
	t       testing.TB
	handler http.Handler
	addr    string
	mu      sync.Mutex
	srv     *http.Server
}

// NewServer starts h on a free port.
func NewServer(t testing.TB, h http.Handler) *Server { return newServerOn(t, h, pulsetest.FreeAddr(t)) }

func newServerOn(t testing.TB, h http.Handler, addr string) *Server {
	s := &Server{t: t, handler: h, addr: addr}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.addr }

// Start starts serving again.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	for range 100 { // the port may linger briefly after Stop
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen on %s: %v", s.addr, err)
	}
	s.srv = &http.Server{Handler: s.handler}
	go s.srv.Serve(ln)
}

// Stop closes the listener and every connection at once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// startChannels serves the email, SMS and push captures on free ports until the test ends.
func startChannels(t testing.TB) *capture.Channels {
	t.Helper()
	cfg := capture.ChannelsConfig{SMTPAddr: pulsetest.FreeAddr(t), SMSAddr: pulsetest.FreeAddr(t), PushAddr: pulsetest.FreeAddr(t)}
	ch, err := capture.NewChannels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.SMTPAddr)
	if err != nil {
		ch.Close()
		t.Fatalf("listen for SMTP: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- ch.SMTP.Serve(ln) }()
	t.Cleanup(func() {
		if err := ch.Close(); err != nil {
			t.Errorf("close the SMTP capture: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("SMTP capture: %v", err)
		}
	})
	newServerOn(t, ch.Twilio, cfg.SMSAddr)
	newServerOn(t, ch.FCM, cfg.PushAddr)
	return ch
}

// ticker posts a PingSource event for each cron job at a fixed interval, as the PingSources
// of config/ do in a cluster.
type ticker struct {
	mu     sync.Mutex
	paused bool
}

func startTicker(t testing.TB, url string, every time.Duration) *ticker {
	tk := &ticker{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tk.mu.Lock()
			paused := tk.paused
			tk.mu.Unlock()
			if paused {
				continue
			}
			for _, job := range []string{"release", "recover", "expire", "trim"} {
				_ = Ping(ctx, url, job)
			}
		}
	}()
	return tk
}

func (tk *ticker) pause(p bool) {
	tk.mu.Lock()
	tk.paused = p
	tk.mu.Unlock()
}

// Ping posts one PingSource event naming job to the cron function at url.
func Ping(ctx context.Context, url, job string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(`{"job":"`+job+`"}`)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", strconv.FormatInt(time.Now().UnixNano(), 10))
	req.Header.Set("Ce-Source", "/apis/v1/namespaces/pulse/pingsources/pulse-"+job)
	req.Header.Set("Ce-Type", "dev.knative.sources.ping")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("cron answered %d to job %s", resp.StatusCode, job)
	}
	return nil
}
