package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulse-knative/pulse/bench/pgstat"
	"github.com/pulse-knative/pulse/bench/proc"
)

// ProcessFigures are what one process used during a run's window.
type ProcessFigures struct {
	Name string `json:"name"`
	// PeakRSSMB is the process's VmHWM (for a tree, the largest of one process);
	// SumPeakRSSMB adds up the tree's processes; Processes counts them.
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	SumPeakRSSMB float64 `json:"sum_peak_rss_mb"`
	Processes    int     `json:"processes"`
	// CPUSeconds is user plus system time over the window, children included; CPUPer1000 the
	// same per thousand notifications.
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPer1000 float64 `json:"cpu_seconds_per_1000"`
	// ReadyMS is the time from the start of the process to its first 200 on /readyz.
	ReadyMS float64 `json:"ready_ms,omitempty"`
	// HeapPeakMB and HeapLiveMB are, for a Go process, the largest heap at the end of a
	// garbage collection and the largest heap it found live, over the process's life, from
	// the runtime's own trace (GODEBUG=gctrace=1).
	HeapPeakMB float64 `json:"heap_peak_mb,omitempty"`
	HeapLiveMB float64 `json:"heap_live_mb,omitempty"`
	// Role says whether the process is part of the system measured ("sut"), of its baseline
	// ("baseline") or of the bench itself ("bench": load generator, sink, samplers).
	Role string `json:"role"`
}

// window measures the processes of a run, PostgreSQL and Redis between begin and end.
type window struct {
	h     *Harness
	procs []*proc.Process
	// roles maps each process to its role; the harness itself is "bench" unless the run says
	// otherwise (the in-process naive baseline).
	harnessRole string
	self        *proc.Tree
	pg          *pgstat.Sampler
	redis0      time.Duration
	busy0, all0 time.Duration
	start       time.Time
	profiled    []*proc.Process
	stop        chan struct{}
	done        chan struct{}
}

// begin starts measuring procs (already running) and, when profile is set, profiling those
// with a pprof listener.
func (h *Harness) begin(ctx context.Context, procs []*proc.Process, profile bool) (*window, error) {
	w := &window{h: h, procs: procs, harnessRole: "bench", self: proc.NewTree(os.Getpid(), false),
		stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	w.pg, err = pgstat.Start(ctx, h.dbURL, h.dbName, 25*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if w.redis0, err = h.redisCPU(ctx); err != nil {
		w.pg.Stop()
		return nil, err
	}
	if profile {
		for _, p := range procs {
			if p.Pprof == "" {
				continue
			}
			if err := pprofCall(ctx, p, "start", nil); err != nil {
				w.pg.Stop()
				return nil, err
			}
			w.profiled = append(w.profiled, p)
		}
	}
	for _, p := range procs {
		p.Tree().Begin()
	}
	w.self.Begin()
	w.busy0, w.all0, _ = proc.MachineCPU()
	w.start = time.Now()
	go w.sampleTrees()
	return w, nil
}

// add starts measuring a process started after begin (its whole CPU time counts).
func (w *window) add(p *proc.Process) { w.procs = append(w.procs, p) }

// sampleTrees rereads the trees of processes that fork now and then, for the peak memory of
// children that come and go.
func (w *window) sampleTrees() {
	defer close(w.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			for _, p := range w.procs {
				if p.Tree().Forks() {
					p.Tree().Sample()
				}
			}
		}
	}
}

// measured is what a window saw.
type measured struct {
	Wall          time.Duration
	Processes     []ProcessFigures
	Harness       ProcessFigures
	Postgres      pgstat.Result
	RedisCPU      time.Duration
	MachineBusy   float64
	ProfileFiles  map[string]string
	ProfileErrors []string
}

// end stops measuring, saves the profiles under the running scenario's name and returns the
// figures; n is the number of notifications the window handled.
func (w *window) end(ctx context.Context, n int) measured {
	wall := time.Since(w.start)
	busy1, all1, _ := proc.MachineCPU()
	close(w.stop)
	<-w.done
	for _, p := range w.procs {
		p.Tree().Sample()
	}
	w.self.Sample()
	m := measured{Wall: wall, ProfileFiles: map[string]string{}}
	if all1 > w.all0 {
		m.MachineBusy = float64(busy1-w.busy0) / float64(all1-w.all0)
	}
	redis1, err := w.h.redisCPU(ctx)
	if err == nil {
		m.RedisCPU = redis1 - w.redis0
	}
	m.Postgres = w.pg.Stop()
	for _, p := range w.procs {
		u := p.Tree().Usage()
		f := figures(p.Name, u, n, "sut")
		f.HeapPeakMB, f.HeapLiveMB = gcTrace(p.Log)
		m.Processes = append(m.Processes, f)
	}
	m.Harness = figures("bench harness", w.self.Usage(), n, w.harnessRole)
	for _, p := range w.profiled {
		if err := w.saveProfiles(ctx, p, w.h.scenario, m.ProfileFiles); err != nil {
			m.ProfileErrors = append(m.ProfileErrors, err.Error())
		}
	}
	return m
}

func figures(name string, u proc.Usage, n int, role string) ProcessFigures {
	f := ProcessFigures{Name: name, PeakRSSMB: mb(u.PeakRSS), SumPeakRSSMB: mb(u.SumPeakRSS), Processes: u.Processes,
		CPUSeconds: u.CPU.Seconds(), Role: role}
	if n > 0 {
		f.CPUPer1000 = f.CPUSeconds * 1000 / float64(n)
	}
	return f
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// gcLine matches the heap sizes of a gctrace line: "gc 12 @0.5s 3%: ... 21->25->13 MB, 24 MB
// goal, ...": at the start of the collection, at its end, and found live.
var gcLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB`)

// gcTrace reads the largest heap at the end of a collection and the largest live heap from a
// Go process's log; zeros when it has no trace lines.
func gcTrace(logPath string) (peak, live float64) {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(data)) {
		m := gcLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		end, _ := strconv.ParseFloat(m[2], 64)
		found, _ := strconv.ParseFloat(m[3], 64)
		peak, live = max(peak, end), max(live, found)
	}
	return peak, live
}

func (w *window) saveProfiles(ctx context.Context, p *proc.Process, scenario string, files map[string]string) error {
	dir := filepath.Join(w.h.opts.Profiles, scenario)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var cpu bytes.Buffer
	if err := pprofCall(ctx, p, "stop", &cpu); err != nil {
		return err
	}
	cpuFile := filepath.Join(dir, p.Name+".cpu.pprof")
	if err := os.WriteFile(cpuFile, cpu.Bytes(), 0o644); err != nil {
		return err
	}
	files[p.Name+".cpu"] = cpuFile
	blockFile := filepath.Join(dir, p.Name+".block.pprof")
	if err := saveProfile(p, "block", blockFile); err != nil {
		return err
	}
	files[p.Name+".block"] = blockFile
	// The allocation profile is saved for reading with pprof (-sample_index=alloc_space), not
	// summed up in the report.
	return saveProfile(p, "allocs", filepath.Join(dir, p.Name+".allocs.pprof"))
}

// saveProfile writes p's pprof profile named kind (block, allocs) to file.
func saveProfile(p *proc.Process, kind, file string) error {
	resp, err := http.Get("http://" + p.Pprof + "/debug/pprof/" + kind)
	if err != nil {
		return fmt.Errorf("%s profile of %s: %w", kind, p.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s profile of %s: %w", kind, p.Name, err)
	}
	return os.WriteFile(file, b, 0o644)
}

func pprofCall(ctx context.Context, p *proc.Process, what string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.Pprof+"/bench/profile/"+what, nil)
	if err != nil {
		return err
	}
	// A process without a readiness endpoint (the stream source) may still be starting: its
	// profile listener opens in init, so wait for it a little.
	var resp *http.Response
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		resp, err = http.DefaultClient.Do(req)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || wait > 2*time.Second || ctx.Err() != nil {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return fmt.Errorf("%s profiling %s: %w", what, p.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s profiling %s: %d %s", what, p.Name, resp.StatusCode, b)
	}
	if out != nil {
		_, err = io.Copy(out, resp.Body)
	}
	return err
}

// redisCPU returns the CPU time the Redis server has used, from INFO cpu.
func (h *Harness) redisCPU(ctx context.Context) (time.Duration, error) {
	info, err := h.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO cpu: %w", err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}
