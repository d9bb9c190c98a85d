package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadLetter is one entry of a priority's dead-letter stream: a dispatch entry the stream source
// gave up on.
type DeadLetter struct {
	// Priority is the priority whose stream the entry came from.
	Priority string `json:"priority"`
	// ID is the dead-letter entry's id, the one to redrive it by.
	ID string `json:"id"`
	// OriginalID is the id the entry had in its priority's stream.
	OriginalID string `json:"original_id"`
	// NotificationID and Channel are the original entry's fields; empty when the original
	// entry had been deleted before it was given up on.
	NotificationID string `json:"notification_id"`
	Channel        string `json:"channel"`
	// Reason says why the stream source gave up.
	Reason string `json:"reason"`
	// Deliveries is how many times the entry was delivered to the sink.
	Deliveries int64 `json:"deliveries"`
	// FailedAt is when the entry was given up on.
	FailedAt time.Time `json:"failed_at"`
}

// DeadLetters lists up to limit entries of priority's dead-letter stream, oldest first.
func DeadLetters(ctx context.Context, client redis.Cmdable, keys Keys, priority string, limit int64) ([]DeadLetter, error) {
	stream := keys.DeadLetter(priority)
	msgs, err := client.XRangeN(ctx, stream, "-", "+", limit).Result()
	if err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", stream, err)
	}
	out := make([]DeadLetter, len(msgs))
	for i, m := range msgs {
		f := messageOf(m).Fields
		d := DeadLetter{Priority: priority, ID: m.ID, OriginalID: f[FieldOriginalID],
			NotificationID: f[FieldNotificationID], Channel: f[FieldChannel], Reason: f[FieldReason]}
		d.Deliveries, _ = strconv.ParseInt(f[FieldDeliveries], 10, 64)
		d.FailedAt, _ = time.Parse(time.RFC3339Nano, f[FieldFailedAt])
		out[i] = d
	}
	return out, nil
}

// Redrive outcomes, one per dead-letter entry asked for.
const (
	// Redriven: the entry was added back to its priority's stream and deleted from the
	// dead-letter stream.
	Redriven = "redriven"
	// Dropped: the entry was deleted from the dead-letter stream without being added back.
	Dropped = "dropped"
	// Missing: no such dead-letter entry (already redriven, dropped or trimmed).
	Missing = "missing"
)

// redriveScript moves dead-letter entries back to their priority's stream, or drops them, in one
// step: an entry is never both in the stream again and still a dead letter, so two operators
// redriving at once add each entry back once.
//
// KEYS[1]: the dead-letter stream
// KEYS[2]: the priority's stream
// ARGV[1]: enqueued_at for the new entries (Unix milliseconds)
// ARGV[2], ARGV[3], ...: pairs of a dead-letter entry id and "redrive" or "drop"
// Reply: per pair, the new stream entry's id when redriven, "dropped", or false when the
// dead-letter entry does not exist.
var redriveScript = redis.NewScript(`
local out = {}
for i = 2, #ARGV, 2 do
	local id, action = ARGV[i], ARGV[i + 1]
	local e = redis.call('XRANGE', KEYS[1], id, id)
	if #e == 0 then
		out[#out + 1] = false
	else
		local f = {}
		local v = e[1][2]
		for j = 1, #v, 2 do
			f[v[j]] = v[j + 1]
		end
		if action == 'redrive' and f['notification_id'] then
			out[#out + 1] = redis.call('XADD', KEYS[2], '*',
				'notification_id', f['notification_id'],
				'channel', f['channel'] or '',
				'enqueued_at', ARGV[1])
		else
			out[#out + 1] = 'dropped'
		end
		redis.call('XDEL', KEYS[1], id)
	end
end
return out
`)

// ErrBadEntryID means a dead-letter entry id is not a stream id.
var ErrBadEntryID = errors.New("not a stream entry id")

// Redrive moves the dead-letter entries of priority named by redrive back to the priority's
// stream (with a fresh enqueued_at from now) and deletes the ones named by drop, atomically. An
// entry without a notification id is dropped rather than redriven: nothing could deliver it. It
// returns each id's outcome: Redriven, Dropped or Missing.
func Redrive(ctx context.Context, client redis.Scripter, keys Keys, priority string, redrive, drop []string, now time.Time) (map[string]string, error) {
	if len(redrive)+len(drop) == 0 {
		return map[string]string{}, nil
	}
	argv := []any{now.UnixMilli()}
	ids := make([]string, 0, len(redrive)+len(drop))
	for _, group := range []struct {
		ids    []string
		action string
	}{{redrive, "redrive"}, {drop, "drop"}} {
		for _, id := range group.ids {
			if !validEntryID(id) {
				return nil, fmt.Errorf("redrive dead letter %q: %w", id, ErrBadEntryID)
			}
			argv = append(argv, id, group.action)
			ids = append(ids, id)
		}
	}
	stream := keys.DeadLetter(priority)
	res, err := redriveScript.Run(ctx, client, []string{stream, keys.Stream(priority)}, argv...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redrive %d dead letters of %s: %w", len(ids), stream, err)
	}
	out := make(map[string]string, len(ids))
	for i, id := range ids {
		switch v := res[i].(type) {
		case nil:
			out[id] = Missing
		case string:
			if v == Dropped {
				out[id] = Dropped
			} else {
				out[id] = Redriven
			}
		}
	}
	return out, nil
}

// validEntryID reports whether id has the shape of a full stream entry id, "ms-seq".
func validEntryID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// TrimDeadLetters bounds priority's dead-letter stream: entries that failed more than maxAge
// before now go, and of the rest only the newest maxLen stay. Zero disables either bound. It
// returns how many entries it deleted.
func TrimDeadLetters(ctx context.Context, client redis.Cmdable, keys Keys, priority string, maxLen int64, maxAge time.Duration, now time.Time) (int64, error) {
	stream := keys.DeadLetter(priority)
	var total int64
	if maxAge > 0 {
		// Dead-letter ids are stamped by Redis when the entry was given up on.
		minID := strconv.FormatInt(now.Add(-maxAge).UnixMilli(), 10)
		n, err := client.XTrimMinID(ctx, stream, minID).Result()
		if err != nil {
			return total, fmt.Errorf("trim dead letters of %s older than %s: %w", stream, maxAge, err)
		}
		total += n
	}
	if maxLen > 0 {
		n, err := client.XTrimMaxLen(ctx, stream, maxLen).Result()
		if err != nil {
			return total, fmt.Errorf("trim dead letters of %s to %d: %w", stream, maxLen, err)
		}
		total += n
	}
	return total, nil
}
