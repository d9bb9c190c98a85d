package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClockTicks is the kernel's USER_HZ, the unit of the CPU times in /proc/<pid>/stat. It is 100
// on every Linux architecture Go supports.
const ClockTicks = 100

// Stat is what /proc says about one process at one moment.
type Stat struct {
	PID, PPID int
	// Comm is the executable's name, at most 15 bytes.
	Comm string
	// CPU is the process's own user and system time; ChildrenCPU is that of its children
	// that have exited and been waited for.
	CPU, ChildrenCPU time.Duration
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (Stat, error) {
	// The name is in parentheses and may hold spaces or parentheses itself: the fields after
	// it start after the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: no name", pid)
	}
	fields := strings.Fields(string(b[end+1:]))
	// fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
	if len(fields) < 15 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	num := func(field int) int64 {
		v, _ := strconv.ParseInt(fields[field-3], 10, 64)
		return v
	}
	tick := time.Second / ClockTicks
	return Stat{
		PID:         pid,
		PPID:        int(num(4)),
		Comm:        string(b[open+1 : end]),
		CPU:         time.Duration(num(14)+num(15)) * tick,
		ChildrenCPU: time.Duration(num(16)+num(17)) * tick,
	}, nil
}

// PeakRSS returns VmHWM from /proc/<pid>/status: the most resident memory the process has had,
// in bytes.
func PeakRSS(pid int) (int64, error) { return statusKB(pid, "VmHWM") }

// RSS returns VmRSS from /proc/<pid>/status: the memory the process has resident now, in bytes.
func RSS(pid int) (int64, error) { return statusKB(pid, "VmRSS") }

// statusKB reads the field named field, counted in kB, of /proc/<pid>/status, in bytes.
func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s of %d: %w", field, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// All reads the stat of every process on the machine. Processes that exit while it reads are
// left out.
func All() []Stat {
	entries, _ := os.ReadDir("/proc")
	out := make([]Stat, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := ReadStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Descendants returns the pids of every living descendant of pid.
func Descendants(pid int) []int {
	children := map[int][]int{}
	for _, s := range All() {
		children[s.PPID] = append(children[s.PPID], s.PID)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// MachineCPU returns the CPU time spent by the whole machine, busy and in total (idle
// included), summed over every core, from /proc/stat.
func MachineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, 0, errors.New("parse /proc/stat: no cpu line")
	}
	var sum, idle int64
	for i, f := range fields[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		sum += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	tick := time.Second / ClockTicks
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, nil
}

// Usage is what a process (with its descendants) used over a window.
type Usage struct {
	// CPU is user plus system time of the process and its descendants, those still running
	// and those that exited.
	CPU time.Duration
	// PeakRSS is the largest VmHWM of one process of the tree, in bytes; SumPeakRSS adds up
	// every process's VmHWM (it counts memory shared between a parent and the children it
	// forked once per process, so it overstates a forking server).
	PeakRSS, SumPeakRSS int64
	// Processes is how many processes the tree had when it was last read.
	Processes int
}

// Tree follows a process and its descendants, so that the CPU time of children that come and
// go is counted: a child's time is read from the child while it lives and, once it has been
// waited for, from its parent's children time. The sum of own plus children time over the
// living processes of the tree therefore counts every CPU second once.
type Tree struct {
	root int
	// forks says whether the process starts children; only then are they looked for (which
	// reads every process's stat on the machine).
	forks bool
	mu    sync.Mutex
	// begin and now are the tree's CPU time at Begin and at the last reading.
	begin, now time.Duration
	// peak holds the largest VmHWM read of each process ever seen.
	peak  map[int]int64
	procs int
}

// NewTree returns a tracker of pid and, when forks is set, its descendants.
func NewTree(pid int, forks bool) *Tree {
	return &Tree{root: pid, forks: forks, peak: map[int]int64{}}
}

// Forks reports whether the tree looks for children.
func (t *Tree) Forks() bool { return t.forks }

// Begin starts the window: CPU time used before it is not counted.
func (t *Tree) Begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.readLocked()
	t.begin = t.now
}

// Sample reads the tree again. Call it at the end of the window, before the processes are
// stopped, and now and then meanwhile to catch the peak memory of short-lived children.
func (t *Tree) Sample() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.readLocked()
}

func (t *Tree) readLocked() {
	pids := []int{t.root}
	if t.forks {
		pids = append(pids, Descendants(t.root)...)
	}
	var sum time.Duration
	n := 0
	for _, pid := range pids {
		s, err := ReadStat(pid)
		if err != nil {
			continue
		}
		n++
		sum += s.CPU + s.ChildrenCPU
		if rss, err := PeakRSS(pid); err == nil {
			t.peak[pid] = max(t.peak[pid], rss)
		}
	}
	if n > 0 {
		t.now, t.procs = sum, n
	}
}

// Usage returns the usage since Begin, as of the last reading.
func (t *Tree) Usage() Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := Usage{CPU: t.now - t.begin, Processes: t.procs}
	for _, rss := range t.peak {
		u.PeakRSS = max(u.PeakRSS, rss)
		u.SumPeakRSS += rss
	}
	return u
}

// Process is one program run by the bench: a function, a stream source or the old stack's
// worker.
type Process struct {
	Name string
	// Port is the HTTP port the process serves on, 0 when it serves none.
	Port int
	// Ready is the path answering 200 once the process serves; empty means the process is
	// ready as soon as it runs.
	Ready string
	// Pprof is the address of the process's profiling endpoint, empty when it has none.
	Pprof string
	// Log is the file the process's output goes to.
	Log string

	cmd     *exec.Cmd
	done    chan struct{}
	started time.Time
	// ReadyAfter is the time from the start of the process to its first 200 on Ready.
	ReadyAfter time.Duration
	tree       *Tree
}

// Spec says how to run a process.
type Spec struct {
	Name string
	// Path and Args are the program and its arguments; Dir its working directory.
	Path string
	Args []string
	Dir  string
	// Env is the whole environment of the process.
	Env   []string
	Port  int
	Ready string
	Pprof string
	// LogDir receives the process's output as <Name>.log.
	LogDir string
	// Forks says that the process starts children whose use counts as its own.
	Forks bool
}

// Start starts the process and waits until it is ready, or until ctx is done or the
// process exits.
func Start(ctx context.Context, s Spec) (*Process, error) {
	p := &Process{Name: s.Name, Port: s.Port, Ready: s.Ready, Pprof: s.Pprof, Log: filepath.Join(s.LogDir, s.Name+".log")}
	logFile, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.Dir, s.Env, logFile, logFile
	// A process group of its own, so that stopping it reaches the children it forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	p.tree = NewTree(cmd.Process.Pid, s.Forks)
	if s.Ready == "" {
		return p, nil
	}
	if err := p.waitReady(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// readyClient asks for readiness on a fresh connection each time: the first answer must not
// wait for an idle connection's keep-alive.
var readyClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (p *Process) waitReady(ctx context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", p.Port, p.Ready)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting:\n%s", p.Name, p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("start %s: %w", p.Name, ctx.Err())
		default:
		}
		if resp, err := readyClient.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ReadyAfter = time.Since(p.started)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s:\n%s", p.Name, p.Tail(20))
		}
		time.Sleep(time.Millisecond)
	}
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Started returns when the process was started.
func (p *Process) Started() time.Time { return p.started }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Tree returns the tracker of the process and its children.
func (p *Process) Tree() *Tree { return p.tree }

// Stop kills the process and its children (its process group) and waits for them. The bench
// measures no shutdown, and a graceful one would cost each run seconds of drain time.
func (p *Process) Stop() {
	if p.cmd == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n lines of the process's output.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
