package pgstat

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-knative/pulse/bench/proc"
)

// background lists the backend types of the server's own processes, shared by every database:
// their work (WAL writing and flushing, checkpoints) is done for the bench's commits but also
// for anyone else's.
var background = []string{"walwriter", "checkpointer", "background writer", "autovacuum launcher",
	"autovacuum worker", "walsender", "logical replication launcher"}

// cpuEvery is how many samples apart the backends' CPU time is read.
const cpuEvery = 10

// Share is one state's part of the backend samples.
type Share struct {
	// State is "CPU" (active, no wait event), "Type:Event" for an active backend waiting,
	// "idle in transaction" (waiting for its client within a transaction) or "idle"
	// (waiting for its client's next statement).
	State string `json:"state"`
	// Fraction is the part of all samples of the database's backends.
	Fraction float64 `json:"fraction"`
	// Backends is the mean number of backends in this state at a sample.
	Backends float64 `json:"backends"`
}

// Result is what a Sampler saw.
type Result struct {
	// Samples is the number of times pg_stat_activity was read.
	Samples int `json:"samples"`
	// Backends is the largest number of the database's backends at a sample.
	Backends int `json:"max_backends"`
	// States are the shares of the database's backends, largest first.
	States []Share `json:"states"`
	// Background are the shares of the server's background processes (WAL writer,
	// checkpointer...), largest first.
	Background []Share `json:"background_states"`
	// BackendCPU is the CPU time of the database's backends; BackgroundCPU that of the
	// server's background processes over the window.
	BackendCPU    time.Duration `json:"backend_cpu_ns"`
	BackgroundCPU time.Duration `json:"background_cpu_ns"`
}

// Sampler samples the backends connected to one database, over its own connection.
type Sampler struct {
	conn  *pgx.Conn
	db    string
	every time.Duration

	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	samples   int
	maxActive int
	states    map[string]int
	bgStates  map[string]int
	// first and last are each backend's CPU readings; born marks backends first seen after
	// the first sample, whose whole CPU time counts.
	first, last map[int]time.Duration
	isBG        map[int]bool
}

// Start connects with url and samples the backends of database db every interval until Stop.
func Start(ctx context.Context, url, db string, every time.Duration) (*Sampler, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect sampler: %w", err)
	}
	s := &Sampler{conn: conn, db: db, every: every, stop: make(chan struct{}), done: make(chan struct{}),
		states: map[string]int{}, bgStates: map[string]int{}, first: map[int]time.Duration{},
		last: map[int]time.Duration{}, isBG: map[int]bool{}}
	if err := s.sample(ctx, true, false); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	go s.loop()
	return s, nil
}

func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.sample(ctx, false, false)
		cancel()
	}
}

func (s *Sampler) sample(ctx context.Context, initial, final bool) error {
	rows, err := s.conn.Query(ctx, `
		select pid, coalesce(backend_type, ''), coalesce(state, ''), coalesce(wait_event_type, ''),
			coalesce(wait_event, ''), coalesce(datname = $1, false)
		from pg_stat_activity
		where (datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend')
			or backend_type = any($2)`, s.db, background)
	if err != nil {
		return fmt.Errorf("sample pg_stat_activity: %w", err)
	}
	type backend struct {
		pid                         int
		btype, state, wtype, wevent string
		ours                        bool
	}
	var seen []backend
	for rows.Next() {
		var b backend
		if err := rows.Scan(&b.pid, &b.btype, &b.state, &b.wtype, &b.wevent, &b.ours); err != nil {
			rows.Close()
			return fmt.Errorf("sample pg_stat_activity: %w", err)
		}
		seen = append(seen, b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sample pg_stat_activity: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	clients := 0
	for _, b := range seen {
		bg := b.btype != "client backend"
		state := b.state
		switch {
		case bg && b.wtype != "":
			state = b.wtype + ":" + b.wevent
		case bg:
			state = "CPU"
		case b.state == "active" && b.wtype == "":
			state = "CPU"
		case b.state == "active":
			state = b.wtype + ":" + b.wevent
		}
		if bg {
			s.bgStates[b.btype+" "+state]++
		} else {
			s.states[state]++
			clients++
		}
		_, known := s.first[b.pid]
		// Reading /proc for every backend at every sample would cost the bench more CPU than
		// it measures: read new backends, then all of them every cpuEvery samples and at the
		// end. A backend that exits between readings loses its last few milliseconds.
		if known && !final && s.samples%cpuEvery != 0 {
			continue
		}
		st, err := proc.ReadStat(b.pid)
		if err != nil {
			continue
		}
		if !known {
			if initial {
				s.first[b.pid] = st.CPU
			} else {
				s.first[b.pid] = 0 // born during the window
			}
		}
		s.last[b.pid] = st.CPU
		s.isBG[b.pid] = bg
	}
	s.maxActive = max(s.maxActive, clients)
	return nil
}

// Stop takes a last sample, stops sampling and returns what was seen.
func (s *Sampler) Stop() Result {
	close(s.stop)
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = s.sample(ctx, false, true)
	cancel()
	s.conn.Close(context.Background())

	s.mu.Lock()
	defer s.mu.Unlock()
	r := Result{Samples: s.samples, Backends: s.maxActive}
	r.States = shares(s.states, s.samples)
	r.Background = shares(s.bgStates, s.samples)
	for pid, last := range s.last {
		d := last - s.first[pid]
		if s.isBG[pid] {
			r.BackgroundCPU += d
		} else {
			r.BackendCPU += d
		}
	}
	return r
}

func shares(counts map[string]int, samples int) []Share {
	total := 0
	for _, n := range counts {
		total += n
	}
	out := make([]Share, 0, len(counts))
	for state, n := range counts {
		out = append(out, Share{State: state, Fraction: float64(n) / float64(max(total, 1)),
			Backends: float64(n) / float64(max(samples, 1))})
	}
	slices.SortFunc(out, func(a, b Share) int {
		if a.Fraction != b.Fraction {
			if a.Fraction > b.Fraction {
				return -1
			}
			return 1
		}
		if a.State < b.State {
			return -1
		}
		return 1
	})
	return out
}
