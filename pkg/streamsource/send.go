package streamsource

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// dispatch sends m in the background. The slot taken for it is held until the sink answered;
// the entry stays in flight, out of the reclaim loop's reach, until it is acknowledged too.
func (s *Source) dispatch(m queue.Message) {
	if m.Fields == nil {
		// Trimmed while pending: there is nothing to send. PostgreSQL still knows the
		// notification, and cron enqueues it again if it stays queued.
		s.logger.Warn("entry deleted while pending; acknowledging it", "entry_id", m.ID)
		if err := s.group.Ack(s.sendCtx, m.ID); err != nil {
			s.logger.Warn("ack deleted entry", "entry_id", m.ID, "error", err.Error())
		}
		s.release(1)
		return
	}
	s.mu.Lock()
	s.inFlight[m.ID] = struct{}{}
	s.mu.Unlock()
	s.sends.Go(func() {
		status, delivered := s.deliver(m)
		// The slots bound the events at the sink: the next may go while this one's XACK
		// travels, batched with others.
		s.release(1)
		if delivered {
			s.ack(m, status)
		}
		s.mu.Lock()
		delete(s.inFlight, m.ID)
		if delivered {
			delete(s.lastFailure, m.ID)
		}
		s.mu.Unlock()
	})
}

// deliver sends one entry and returns the sink's status and whether the sink took it (2xx).
// Otherwise the entry stays pending, or goes to the dead-letter stream when the sink refused
// it.
func (s *Source) deliver(m queue.Message) (status int, delivered bool) {
	status, err := s.send(s.sendCtx, m)
	var reason string
	switch {
	case err != nil:
		reason = err.Error()
	case status < 200 || status > 299:
		reason = fmt.Sprintf("sink answered %d", status)
	}
	if refused(status) {
		// The sink says the event can never succeed: offering it again would only fail again.
		reason = fmt.Sprintf("sink refused the event with %d", status)
		moved, err := s.group.DeadLetter(s.sendCtx, m.ID, reason, 0, s.now())
		if err == nil && moved {
			s.forgetFailure(m.ID)
			s.entryLogger(m).Warn("entry moved to dead letter", "reason", reason)
			return status, false
		}
	}
	if reason != "" {
		s.sinkFailures.Add(1)
		s.recordFailure(m.ID, reason)
		s.entryLogger(m).Warn("sink did not take the entry; it stays pending", "reason", reason)
		return status, false
	}
	// Loaded first: a swap on every send would bounce the counter between cores.
	if s.sinkFailures.Load() > 0 && s.sinkFailures.Swap(0) > 0 {
		select {
		case s.sinkRecovered <- struct{}{}:
		default:
		}
	}
	return status, true
}

// ack acknowledges an entry the sink took with status, in an XACK shared with concurrent
// sends.
func (s *Source) ack(m queue.Message, status int) {
	if _, err := s.acks.Do(s.sendCtx, m.ID); err != nil {
		// The sink has it; the entry will be sent again later, which is harmless.
		s.entryLogger(m).Warn("ack delivered entry", "error", err.Error())
		return
	}
	if s.logger.Enabled(s.sendCtx, slog.LevelDebug) {
		s.entryLogger(m).Debug("entry delivered", "status", status)
	}
}

// entryLogger returns the logger of lines about m. It is built only when there is something
// to say: formatting its attributes for every entry costs more than the rest of the happy
// path's logging.
func (s *Source) entryLogger(m queue.Message) *slog.Logger {
	return s.logger.With("entry_id", m.ID, "notification_id", m.Fields[queue.FieldNotificationID])
}

// refused reports a status by which the sink says the event itself is wrong (400, 404, 413,
// 422 …), as opposed to a sink that is down, overloaded or timing out.
func refused(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout &&
		status != http.StatusConflict && status != http.StatusTooManyRequests
}

// send POSTs the event of m to the sink in binary mode and returns the sink's status.
func (s *Source) send(ctx context.Context, m queue.Message) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SinkTimeout)
	defer cancel()
	resp, err := s.http.Do(s.request(ctx, m))
	if err != nil {
		// net/http redacts a password in the URL of its errors.
		return 0, fmt.Errorf("post entry %s: %w", m.ID, err)
	}
	defer resp.Body.Close()
	if resp.Body != http.NoBody {
		// Read what the sink answered so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	}
	return resp.StatusCode, nil
}

// request returns the POST of the event of m in binary mode: what NewEvent and the
// CloudEvents SDK's binary encoding write, built without them, which cost more than the rest
// of a send but the connection.
func (s *Source) request(ctx context.Context, m queue.Message) *http.Request {
	// The template's URL is shared and only read.
	req := s.post.WithContext(ctx)
	req.Header = make(http.Header, len(s.eventHeader)+3)
	for k, v := range s.eventHeader {
		req.Header[k] = v
	}
	// The entry's own values in one array, each slice capped so no append can reach the next.
	values := make([]string, 0, 3)
	values = append(values, headerValue(m.ID))
	req.Header["Ce-Id"] = values[0:1:1]
	if t, ok := entryTime(m.ID); ok {
		var buf [len(time.RFC3339Nano)]byte
		values = append(values, string(t.AppendFormat(buf[:0], time.RFC3339Nano)))
		req.Header["Ce-Time"] = values[len(values)-1 : len(values) : len(values)]
	}
	if subject, ok := subject(m.Fields); ok {
		values = append(values, subject)
		req.Header["Ce-Subject"] = values[len(values)-1 : len(values) : len(values)]
	}
	data := EncodeData(m.Fields)
	req.Body = io.NopCloser(bytes.NewReader(data))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	req.ContentLength = int64(len(data))
	return req
}

// newEventHeader returns the header lines of binary mode that every event of priority's
// stream shares.
func newEventHeader(priority string) http.Header {
	return http.Header{
		"Ce-Specversion": {event.CloudEventsVersionV1},
		"Ce-Type":        {headerValue(notification.TypeDispatch)},
		"Ce-Source":      {headerValue(EventSource(priority))},
		"Ce-Priority":    {headerValue(priority)},
		"Content-Type":   {event.ApplicationJSON},
	}
}
