package streamsource

import (
	"context"
	"time"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// reclaimLoop periodically claims the entries idle longer than cfg.ReclaimIdle, whoever
// holds them: their consumer died, or their send failed.
func (s *Source) reclaimLoop(ctx context.Context) {
	ticker := time.NewTicker(s.reclaimEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			s.reclaim(ctx)
		}
	}
}

// reclaim claims and sends idle entries, as many as there are free slots (one while the sink
// fails), and moves those delivered cfg.MaxDeliveries times to the dead-letter stream.
func (s *Source) reclaim(ctx context.Context) {
	claimed, dead := 0, 0
	defer func() {
		if claimed+dead > 0 {
			s.logger.Info("reclaimed idle entries", "claimed", claimed, "dead_lettered", dead)
		}
	}()
	page := int64(max(s.cfg.Concurrency, 16))
	start := "-"
	for ctx.Err() == nil {
		pending, err := s.group.Pending(ctx, queue.PendingRange{Start: start, End: "+", Count: page, MinIdle: s.cfg.ReclaimIdle})
		if err != nil {
			s.redisFailed(ctx, "list idle entries", err, 0)
			return
		}
		var ids []string
		for _, p := range pending {
			if s.sending(p.ID) {
				continue
			}
			if p.Deliveries >= s.cfg.MaxDeliveries {
				if s.deadLetter(ctx, p.ID, p.Deliveries, s.cfg.ReclaimIdle) {
					dead++
				}
				continue
			}
			ids = append(ids, p.ID)
		}
		probe := s.sinkFailures.Load() > 0
		if probe && len(ids) > 1 {
			ids = ids[:1]
		}
		for len(ids) > 0 {
			n := s.acquire(ctx, len(ids))
			if n == 0 {
				return
			}
			msgs, err := s.group.Claim(ctx, s.cfg.ReclaimIdle, ids[:n]...)
			if err != nil {
				s.release(n)
				s.redisFailed(ctx, "claim", err, 0)
				return
			}
			s.release(n - len(msgs))
			for _, m := range msgs {
				s.logger.Debug("claimed idle entry", "entry_id", m.ID)
				s.dispatch(m)
			}
			claimed += len(msgs)
			ids = ids[n:]
		}
		if probe || int64(len(pending)) < page {
			return
		}
		start = "(" + pending[len(pending)-1].ID
	}
}

func (s *Source) sending(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inFlight[id]
	return ok
}
