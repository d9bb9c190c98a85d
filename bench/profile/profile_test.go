package profile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// traces is `go tool pprof -traces` output of a tiny CPU profile.
const traces = `File: ingest
Type: cpu
Time: 2026-11-25 18:00:00 UTC
Duration: 1s, Total samples = 60ms ( 6.00%)
-----------+-------------------------------------------------------
      30ms   internal/runtime/syscall/linux.Syscall6
             syscall.Syscall
             github.com/jackc/pgx/v5/pgconn.(*PgConn).flush
             github.com/pulse-knative/pulse/pkg/store.(*Store).Insert
             net/http.(*conn).serve
-----------+-------------------------------------------------------
      20ms   encoding/json.(*decodeState).object
             github.com/pulse-knative/pulse/pkg/notification.ParseRequest
             github.com/pulse-knative/pulse/pkg/ingest.(*Handler).parse
             net/http.(*conn).serve
-----------+-------------------------------------------------------
      10ms   runtime.futex (inline)
             runtime.findRunnable
             runtime.schedule
-----------+-------------------------------------------------------
`

func TestParse(t *testing.T) {
	t.Parallel()
	s, err := parse([]byte(traces), 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != "cpu" || s.Total != 60*time.Millisecond {
		t.Fatalf("type %q total %s, want cpu 60ms", s.Type, s.Total)
	}
	names := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"internal/runtime/syscall/linux.Syscall6", "encoding/json.(*decodeState).object", "runtime.futex"}, names(s.Flat)); diff != "" {
		t.Errorf("flat (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pkg/store.(*Store).Insert", "pkg/notification.ParseRequest", "(outside Pulse's packages)"}, names(s.Pulse)); diff != "" {
		t.Errorf("pulse (-want +got):\n%s", diff)
	}
	areas := map[string]float64{}
	for _, a := range s.Areas {
		areas[a.Name] = a.Percent
	}
	want := map[string]float64{"syscalls (network, files)": 50, "pgx (PostgreSQL client)": 50, "net/http": 50 + 100.0/3,
		"JSON": 100.0 / 3, "scheduler and idle": 100.0 / 6}
	if diff := cmp.Diff(want, areas); diff != "" {
		t.Errorf("areas (-want +got):\n%s", diff)
	}
	if s.Sites[0].Name != "github.com/jackc/pgx/v5/pgconn.(*PgConn).flush" {
		t.Errorf("top site %q", s.Sites[0].Name)
	}
}

func TestFrameName(t *testing.T) {
	t.Parallel()
	in := "github.com/pulse-knative/pulse/pkg/batch.(*Batcher[go.shape.string,go.shape.struct { N int; E error }]).Do (inline)"
	if got, want := frameName(in), "github.com/pulse-knative/pulse/pkg/batch.(*Batcher[…]).Do"; got != want {
		t.Errorf("frameName = %q, want %q", got, want)
	}
}

func TestParseValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"10ms": 10 * time.Millisecond, "1.5s": 1500 * time.Millisecond,
		"250us": 250 * time.Microsecond, "3µs": 3 * time.Microsecond, "2mins": 2 * time.Minute, "42ns": 42} {
		got, err := parseValue(in)
		if err != nil || got != want {
			t.Errorf("parseValue(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
}
