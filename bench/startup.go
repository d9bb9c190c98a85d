package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// startupFunctions are the HTTP functions whose time to ready is measured, in order.
var startupFunctions = []string{"ingest", "deliver-high", "deliver-low", "cron", "metrics"}

func (h *Harness) startupScenario() scenario {
	return scenario{
		Name: "startup", Group: "Start-up",
		Title:  "process start to /readyz 200 (stream-source: to its first event at the sink), against a migrated schema",
		Target: fmt.Sprintf("each function ready ≤ %d ms", targetReadyMS),
		Check: func(s *Summary) bool {
			for _, p := range s.Processes {
				if p.ReadyMS.Median > targetReadyMS {
					return false
				}
			}
			return len(s.Processes) > 0
		},
		run: h.runStartup,
	}
}

// runStartup starts each function alone, as a scale-from-zero would, and times it.
func (h *Harness) runStartup(ctx context.Context, rep int, _ bool) (Run, error) {
	var r Run
	e, err := h.newEnv(ctx)
	if err != nil {
		return r, err
	}
	defer e.close()
	for _, name := range startupFunctions {
		if !h.built[name] {
			if why := h.buildErrors[name]; why != "" && rep == 1 {
				r.Notes = append(r.Notes, why)
			}
			continue
		}
		p, err := e.start(ctx, name, name, nil, false)
		if err != nil {
			return r, err
		}
		p.Tree().Sample()
		u := p.Tree().Usage()
		r.Processes = append(r.Processes, ProcessFigures{Name: name, Role: "sut", ReadyMS: ms(p.ReadyAfter),
			PeakRSSMB: mb(u.PeakRSS), SumPeakRSSMB: mb(u.SumPeakRSS), Processes: 1})
		p.Stop()
	}
	if h.built["stream-source"] {
		f, err := h.streamSourceStartup(ctx, e)
		if err != nil {
			return r, err
		}
		r.Processes = append(r.Processes, f)
	}
	return r, nil
}

// streamSourceStartup times the stream source from its start to the first event it hands to
// its sink: one entry waits in the stream.
func (h *Harness) streamSourceStartup(ctx context.Context, e *runEnv) (ProcessFigures, error) {
	arrived := make(chan time.Time, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ProcessFigures{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case arrived <- time.Now():
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	err = h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: queue.NewKeys(e.prefix).Stream("high"),
		Values: []string{queue.FieldNotificationID, "00000000-0000-0000-0000-000000000000", queue.FieldChannel, "webhook", queue.FieldEnqueuedAt, "0"}}).Err()
	if err != nil {
		return ProcessFigures{}, err
	}
	p, err := e.start(ctx, "stream-source", "stream-source", map[string]string{
		"PULSE_PRIORITY": "high", "K_SINK": "http://" + ln.Addr().String() + "/", "PULSE_STREAM_CONSUMER": "bench",
	}, false)
	if err != nil {
		return ProcessFigures{}, err
	}
	defer p.Stop()
	select {
	case at := <-arrived:
		p.Tree().Sample()
		u := p.Tree().Usage()
		return ProcessFigures{Name: "stream-source", Role: "sut", ReadyMS: ms(at.Sub(p.Started())),
			PeakRSSMB: mb(u.PeakRSS), SumPeakRSSMB: mb(u.SumPeakRSS), Processes: 1}, nil
	case <-time.After(30 * time.Second):
		return ProcessFigures{}, fmt.Errorf("stream-source sent nothing within 30s:\n%s", p.Tail(20))
	case <-ctx.Done():
		return ProcessFigures{}, ctx.Err()
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// binarySizes returns the size in MB of each program as ko builds it.
func (h *Harness) binarySizes() map[string]float64 {
	out := map[string]float64{}
	for _, c := range commands {
		if fi, err := os.Stat(filepath.Join(h.plain, c.name)); err == nil {
			out[c.name] = mb(fi.Size())
		}
	}
	return out
}
