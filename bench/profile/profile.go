package profile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entry is one function, site or area and its part of a profile.
type Entry struct {
	Name string `json:"name"`
	// Value is in the profile's unit: CPU time, or time spent blocked.
	Value time.Duration `json:"value_ns"`
	// Percent is Value's part of the profile's total.
	Percent float64 `json:"percent"`
}

// Summary is what a profile comes to.
type Summary struct {
	// Type is the profile's type, as pprof names it (cpu, delay...).
	Type  string        `json:"type"`
	Total time.Duration `json:"total_ns"`
	// Flat are the functions with the most samples of their own; Cum those with the most
	// samples in themselves or their callees.
	Flat []Entry `json:"flat"`
	Cum  []Entry `json:"cum"`
	// Areas are the parts of the samples whose stack passes through each area (see Areas);
	// a sample may count in several.
	Areas []Entry `json:"areas"`
	// Sites attribute each sample to its innermost frame outside the runtime, sync and
	// internal packages: for a block profile, where goroutines wait.
	Sites []Entry `json:"sites"`
	// Pulse attribute each sample to its innermost frame in Pulse's own packages.
	Pulse []Entry `json:"pulse"`
}

// Area names a part of the program by the functions in it.
type Area struct {
	Name    string
	Pattern *regexp.Regexp
}

// Areas are the parts of a function the report splits CPU time into.
var Areas = []Area{
	{"syscalls (network, files)", regexp.MustCompile(`^(syscall|internal/runtime/syscall|internal/poll)\.`)},
	{"GC and allocation", regexp.MustCompile(`^runtime\.(gcBgMarkWorker|mallocgc|gcAssistAlloc|gcDrain|scanobject|newobject|makeslice|growslice)`)},
	{"scheduler and idle", regexp.MustCompile(`^runtime\.(schedule|findRunnable|netpoll|futex|stopm|notesleep|mcall|park_m)`)},
	{"net/http", regexp.MustCompile(`^net/http\.`)},
	{"pgx (PostgreSQL client)", regexp.MustCompile(`^github\.com/jackc/`)},
	{"go-redis", regexp.MustCompile(`^github\.com/redis/go-redis`)},
	{"JSON", regexp.MustCompile(`^(encoding/json|github\.com/json-iterator)`)},
	{"CloudEvents SDK", regexp.MustCompile(`^github\.com/cloudevents/`)},
	{"logging (log/slog)", regexp.MustCompile(`^log/slog\.`)},
	{"crypto (HMAC, TLS)", regexp.MustCompile(`^crypto/`)},
}

var (
	outside = regexp.MustCompile(`^((runtime|sync|syscall|context|time)[./]|internal/)`)
	pulse   = regexp.MustCompile(`^github\.com/pulse-knative/pulse/`)
)

// Analyze reads the profile at path and keeps the top entries of each list.
func Analyze(ctx context.Context, path string, top int) (Summary, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return Summary{}, fmt.Errorf("go tool pprof -traces %s: %w", path, err)
	}
	return parse(out, top)
}

type sample struct {
	value  time.Duration
	frames []string // innermost first
}

func parse(out []byte, top int) (Summary, error) {
	var s Summary
	var samples []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if t, ok := strings.CutPrefix(line, "Type: "); ok {
			s.Type = strings.TrimSpace(t)
			continue
		}
		if strings.HasPrefix(line, "-----") {
			cur = nil
			continue
		}
		if !strings.HasPrefix(line, " ") {
			continue // the header
		}
		text := strings.TrimSpace(line)
		if text == "" {
			continue
		}
		if cur == nil {
			// The first line of a sample: its value, then its innermost frame.
			value, name, ok := strings.Cut(text, " ")
			if !ok {
				continue
			}
			v, err := parseValue(value)
			if err != nil {
				continue
			}
			samples = append(samples, sample{value: v, frames: []string{frameName(name)}})
			cur = &samples[len(samples)-1]
			continue
		}
		cur.frames = append(cur.frames, frameName(text))
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read pprof traces: %w", err)
	}

	flat, cum, areas, sites, own := map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}
	for _, smp := range samples {
		s.Total += smp.value
		if len(smp.frames) == 0 {
			continue
		}
		flat[smp.frames[0]] += smp.value
		seen := map[string]bool{}
		inArea := map[string]bool{}
		site, mine := "", ""
		for _, f := range smp.frames {
			if !seen[f] {
				seen[f] = true
				cum[f] += smp.value
			}
			for _, a := range Areas {
				if !inArea[a.Name] && a.Pattern.MatchString(f) {
					inArea[a.Name] = true
					areas[a.Name] += smp.value
				}
			}
			if site == "" && !outside.MatchString(f) {
				site = f
			}
			if mine == "" && pulse.MatchString(f) {
				mine = f
			}
		}
		if site == "" {
			site = "(runtime only)"
		}
		if mine == "" {
			mine = "(outside Pulse's packages)"
		}
		sites[site] += smp.value
		own[strings.TrimPrefix(mine, "github.com/pulse-knative/pulse/")] += smp.value
	}
	s.Flat = entries(flat, s.Total, top)
	s.Cum = entries(cum, s.Total, top)
	s.Areas = entries(areas, s.Total, len(Areas))
	s.Sites = entries(sites, s.Total, top)
	s.Pulse = entries(own, s.Total, top)
	return s, nil
}

func entries(m map[string]time.Duration, total time.Duration, top int) []Entry {
	out := make([]Entry, 0, len(m))
	for name, v := range m {
		out = append(out, Entry{Name: name, Value: v, Percent: 100 * float64(v) / float64(max(total, 1))})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Value != b.Value {
			if a.Value > b.Value {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out[:min(top, len(out))]
}

// frameName cleans a frame's name up: no "(inline)" mark, and a generic type's shape, which
// can run to hundreds of characters, shortened to "[…]".
func frameName(s string) string {
	s = strings.TrimSuffix(strings.TrimSpace(s), " (inline)")
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			if depth == 0 {
				b.WriteString("[…]")
			}
			depth++
		case r == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// parseValue reads a pprof value such as 10ms, 1.50s, 250us or 3µs.
func parseValue(v string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"mins", time.Minute}, {"hrs", time.Hour}, {"ms", time.Millisecond}, {"us", time.Microsecond},
		{"µs", time.Microsecond}, {"ns", time.Nanosecond}, {"s", time.Second}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	return time.Duration(f), err
}
