package proc

import (
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	// A name with a space and a parenthesis, as a process may set.
	line := "4242 (celery: (worker) x) S 4200 4242 4242 0 -1 4194560 1000 0 0 0 250 50 7 3 20 0 1 0 100 0 0"
	got, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PID: 4242, PPID: 4200, Comm: "celery: (worker) x", CPU: 3 * time.Second, ChildrenCPU: 100 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseStat (-want +got):\n%s", diff)
	}
	if _, err := parseStat(1, []byte("1 no name")); err == nil {
		t.Error("parseStat accepted a line without a name")
	}
}

func TestSelf(t *testing.T) {
	t.Parallel()
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != os.Getppid() {
		t.Errorf("PPID = %d, want %d", s.PPID, os.Getppid())
	}
	// The resident size first: the peak read after it is at least as large.
	now, nowErr := RSS(os.Getpid())
	rss, err := PeakRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}
	if nowErr != nil || now <= 0 || now > rss {
		t.Errorf("RSS = %d, %v; want positive and at most the peak %d", now, nowErr, rss)
	}
	busy, total, err := MachineCPU()
	if err != nil || busy <= 0 || total < busy {
		t.Errorf("MachineCPU = %s, %s, %v", busy, total, err)
	}
}
