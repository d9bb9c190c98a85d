package streamsource

import (
	"context"
	"fmt"
	"time"
)

// deadLetter moves an entry to the dead-letter stream, unless it was delivered less than
// minIdle ago, and reports whether it did.
func (s *Source) deadLetter(ctx context.Context, id string, deliveries int64, minIdle time.Duration) bool {
	reason := fmt.Sprintf("delivered %d times without a 2xx from the sink", deliveries)
	s.mu.Lock()
	last, ok := s.lastFailure[id]
	s.mu.Unlock()
	if ok {
		reason += "; last: " + last
	}
	moved, err := s.group.DeadLetter(ctx, id, reason, minIdle, s.now())
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("move entry to dead letter", "entry_id", id, "error", err.Error())
		}
		return false
	}
	if moved {
		s.forgetFailure(id)
		s.logger.Warn("entry moved to dead letter", "entry_id", id, "deliveries", deliveries, "reason", reason)
	}
	return moved
}

func (s *Source) recordFailure(id, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Entries acknowledged by another consumer never come back to be forgotten: bound the map.
	if _, ok := s.lastFailure[id]; !ok && len(s.lastFailure) >= 16*s.cfg.Concurrency {
		for k := range s.lastFailure {
			delete(s.lastFailure, k)
			break
		}
	}
	s.lastFailure[id] = reason
}

func (s *Source) forgetFailure(id string) {
	s.mu.Lock()
	delete(s.lastFailure, id)
	s.mu.Unlock()
}
