package streamsource

import (
	"context"
	"time"

	"github.com/pulse-knative/pulse/pkg/queue"
)

// readLoop first re-reads this consumer's own pending entries (those a previous process with
// the same name read and did not acknowledge), then new entries, as many as there are free
// slots.
func (s *Source) readLoop(ctx context.Context) {
	resuming, after, resumed := true, "0", 0
	redisFailures := 0
	for ctx.Err() == nil {
		if !s.waitForSink(ctx) {
			return
		}
		want := s.cfg.Concurrency
		if s.sinkFailures.Load() > 0 {
			want = 1
		}
		n := s.acquire(ctx, want)
		if n == 0 {
			return
		}
		var msgs []queue.Message
		var err error
		if resuming {
			msgs, err = s.group.ReadPending(ctx, after, int64(n))
		} else {
			msgs, err = s.group.Read(ctx, int64(n), readBlock)
		}
		if err != nil {
			s.release(n)
			redisFailures++
			s.redisFailed(ctx, "read", err, redisFailures)
			continue
		}
		redisFailures = 0
		if resuming {
			if len(msgs) == 0 {
				resuming = false
				s.logger.Info("resumed pending entries", "count", resumed)
			} else {
				after = msgs[len(msgs)-1].ID
				resumed += len(msgs)
				msgs = s.dropExhausted(ctx, msgs)
			}
		}
		s.release(n - len(msgs))
		for _, m := range msgs {
			s.dispatch(m)
		}
	}
}

// dropExhausted moves to the dead-letter stream the resumed entries that had already been
// delivered cfg.MaxDeliveries times before this read, and returns the others.
func (s *Source) dropExhausted(ctx context.Context, msgs []queue.Message) []queue.Message {
	pending, err := s.group.Pending(ctx, queue.PendingRange{
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)),
		Consumer: s.group.Consumer(),
	})
	if err != nil {
		// Sending again is safe; the reclaim loop will catch the entry on a later failure.
		s.logger.Warn("count deliveries of resumed entries", "error", err.Error())
		return msgs
	}
	deliveries := make(map[string]int64, len(pending))
	for _, p := range pending {
		deliveries[p.ID] = p.Deliveries
	}
	keep := msgs[:0]
	for _, m := range msgs {
		// This read counted once more: more than MaxDeliveries means MaxDeliveries before.
		if n := deliveries[m.ID]; n > s.cfg.MaxDeliveries {
			s.deadLetter(ctx, m.ID, n, 0)
			continue
		}
		keep = append(keep, m)
	}
	return keep
}

// acquire waits for one free slot, takes up to want, and returns how many it took; zero
// when ctx was cancelled first.
func (s *Source) acquire(ctx context.Context, want int) int {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < want {
		select {
		case s.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (s *Source) release(n int) {
	for range n {
		<-s.slots
	}
}

// waitForSink waits before reading more while the sink fails, until the wait is over or a
// send succeeds. It reports false when ctx was cancelled.
func (s *Source) waitForSink(ctx context.Context) bool {
	n := s.sinkFailures.Load()
	if n == 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(backoff(int(min(n, 32)), sinkBackoffMin, sinkBackoffMax))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.sinkRecovered:
	case <-ctx.Done():
		return false
	}
	return true
}
