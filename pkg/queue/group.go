package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoGroup means the consumer group, or the whole stream, no longer exists: someone
// destroyed the group, deleted the key or flushed Redis. Create the group again to go on.
var ErrNoGroup = errors.New("consumer group does not exist")

// Dead-letter entry fields, added to the original entry's fields.
const (
	// FieldReason says why the entry was given up on, e.g. the sink's last answer.
	FieldReason = "reason"
	// FieldOriginalID is the entry's id in the stream it came from.
	FieldOriginalID = "original_id"
	// FieldDeliveries is how many times the entry had been delivered to a consumer.
	FieldDeliveries = "deliveries"
	// FieldFailedAt is when the entry was moved, RFC 3339 with nanoseconds, UTC.
	FieldFailedAt = "failed_at"
)

// Message is one stream entry as a consumer of a group reads it.
type Message struct {
	// ID is the entry's stream id, such as "1700000000000-0".
	ID string
	// Fields are the entry's fields. They are nil when the entry was deleted from the stream
	// (trimmed) while it was still pending.
	Fields map[string]string
}

// Pending is an entry delivered to a consumer of a group and not acknowledged yet.
type Pending struct {
	// ID is the entry's stream id.
	ID string
	// Consumer is the consumer the entry was last delivered to.
	Consumer string
	// Idle is the time since the entry was last delivered.
	Idle time.Duration
	// Deliveries is how many times the entry was delivered.
	Deliveries int64
}

// PendingRange selects entries of a group's pending entries list.
type PendingRange struct {
	// Start and End bound the ids, both inclusive: "-" is the first id, "+" the last, and an
	// id preceded by "(" is exclusive.
	Start, End string
	// Count bounds the number of entries returned; it must be positive.
	Count int64
	// MinIdle keeps only the entries last delivered at least this long ago; zero keeps all.
	MinIdle time.Duration
	// Consumer keeps only the entries of one consumer; empty keeps every consumer's.
	Consumer string
}

// Group reads one priority's stream as one consumer of a consumer group. Redis keeps, per
// group, the entries delivered and not yet acknowledged (the pending entries list), so an
// entry read by a consumer that dies is not lost: another consumer claims it once it has
// been idle long enough.
type Group struct {
	client     redis.Cmdable
	stream     string
	deadLetter string
	name       string
	consumer   string
}

// NewGroup returns the consumer named consumer of the group named group on the stream of
// priority. It does not talk to Redis; call Create before reading.
func NewGroup(client redis.Cmdable, keys Keys, priority, group, consumer string) *Group {
	return &Group{
		client:     client,
		stream:     keys.Stream(priority),
		deadLetter: keys.DeadLetter(priority),
		name:       group,
		consumer:   consumer,
	}
}

// Stream returns the key of the stream the group reads.
func (g *Group) Stream() string { return g.stream }

// DeadLetterStream returns the key of the stream that receives the entries given up on.
func (g *Group) DeadLetterStream() string { return g.deadLetter }

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Consumer returns the name of this consumer within the group.
func (g *Group) Consumer() string { return g.consumer }

// Create creates the group, and the stream if it does not exist, reading from the first
// entry ("0"), so entries added while the group did not exist are delivered too. A group
// that already exists is left as it is.
func (g *Group) Create(ctx context.Context) error {
	err := g.client.XGroupCreateMkStream(ctx, g.stream, g.name, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", g.name, g.stream, err)
	}
	return nil
}

// Read returns up to count entries never delivered to any consumer of the group, waiting up
// to block for the first one. No entry within block gives an empty slice and no error.
// A lost group gives an error wrapping ErrNoGroup.
func (g *Group) Read(ctx context.Context, count int64, block time.Duration) ([]Message, error) {
	if block <= 0 {
		// go-redis reads BLOCK 0 as "wait forever"; a short wait keeps the caller responsive.
		block = time.Millisecond
	}
	entries, err := g.read(ctx, ">", count, block)
	if err != nil {
		return nil, fmt.Errorf("read new entries of %s: %w", g.stream, err)
	}
	return entries, nil
}

// ReadPending returns up to count entries already delivered to this consumer and not
// acknowledged, in id order, starting after the id after ("0" for the first). It does not
// wait. Redis counts each one as delivered once more. An entry deleted from the stream while
// pending comes back with nil Fields.
func (g *Group) ReadPending(ctx context.Context, after string, count int64) ([]Message, error) {
	entries, err := g.read(ctx, after, count, -1)
	if err != nil {
		return nil, fmt.Errorf("read pending entries of %s after %s: %w", g.stream, after, err)
	}
	return entries, nil
}

func (g *Group) read(ctx context.Context, id string, count int64, block time.Duration) ([]Message, error) {
	streams, err := g.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    g.name,
		Consumer: g.consumer,
		Streams:  []string{g.stream, id},
		Count:    count,
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, noGroup(err)
	}
	var entries []Message
	for _, s := range streams {
		for _, m := range s.Messages {
			entries = append(entries, messageOf(m))
		}
	}
	return entries, nil
}

// Ack acknowledges entries: they leave the group's pending entries list for good. Entries
// that are not pending are ignored.
func (g *Group) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := g.client.XAck(ctx, g.stream, g.name, ids...).Err(); err != nil {
		return fmt.Errorf("ack %d entries of %s: %w", len(ids), g.stream, noGroup(err))
	}
	return nil
}

// Pending lists the group's pending entries selected by r, in id order.
func (g *Group) Pending(ctx context.Context, r PendingRange) ([]Pending, error) {
	got, err := g.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   g.stream,
		Group:    g.name,
		Idle:     r.MinIdle,
		Start:    r.Start,
		End:      r.End,
		Count:    r.Count,
		Consumer: r.Consumer,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list pending entries of %s: %w", g.stream, noGroup(err))
	}
	out := make([]Pending, len(got))
	for i, p := range got {
		out[i] = Pending{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle, Deliveries: p.RetryCount}
	}
	return out, nil
}

// Claim makes this consumer the owner of the pending entries ids that have been idle at
// least minIdle, counts them as delivered once more and returns them. Entries another
// consumer claimed or received meanwhile (idle less than minIdle) are left alone and not
// returned. Redis 7 drops entries deleted from the stream from the pending list instead of
// returning them; older servers return them with nil Fields.
func (g *Group) Claim(ctx context.Context, minIdle time.Duration, ids ...string) ([]Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	msgs, err := g.client.XClaim(ctx, &redis.XClaimArgs{
		Stream:   g.stream,
		Group:    g.name,
		Consumer: g.consumer,
		MinIdle:  minIdle,
		Messages: ids,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim %d entries of %s: %w", len(ids), g.stream, noGroup(err))
	}
	entries := make([]Message, len(msgs))
	for i, m := range msgs {
		entries[i] = messageOf(m)
	}
	return entries, nil
}

// deadLetterScript moves one pending entry to the dead-letter stream and acknowledges it in
// one step, so an entry is never both given up on and still pending, nor acknowledged
// without its dead-letter copy.
//
// KEYS[1]: the stream
// KEYS[2]: the dead-letter stream
// ARGV[1]: the group
// ARGV[2]: the entry id
// ARGV[3]: minimum idle time in milliseconds: an entry delivered more recently than that (to
// another consumer that just claimed it) is left alone
// ARGV[4]: the reason
// ARGV[5]: the failure time
// Reply: the dead-letter entry's id, or nil when the entry is not pending or not idle long
// enough. The dead-letter entry holds the original fields (none when the entry was deleted),
// then reason, original_id, deliveries and failed_at.
var deadLetterScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[2], ARGV[2], 1)
if #p == 0 then
	return false
end
local fields = {}
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e > 0 then
	for _, v in ipairs(e[1][2]) do
		fields[#fields + 1] = v
	end
end
fields[#fields + 1] = 'reason'
fields[#fields + 1] = ARGV[4]
fields[#fields + 1] = 'original_id'
fields[#fields + 1] = ARGV[2]
fields[#fields + 1] = 'deliveries'
fields[#fields + 1] = tostring(p[1][4])
fields[#fields + 1] = 'failed_at'
fields[#fields + 1] = ARGV[5]
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
`)

// DeadLetter moves the pending entry id to the dead-letter stream with reason and failedAt,
// and acknowledges it, atomically. It reports false, and changes nothing, when the entry is
// not pending or was delivered less than minIdle ago (zero skips that check).
func (g *Group) DeadLetter(ctx context.Context, id, reason string, minIdle time.Duration, failedAt time.Time) (bool, error) {
	err := deadLetterScript.Run(ctx, g.client,
		[]string{g.stream, g.deadLetter},
		g.name, id, minIdle.Milliseconds(), reason, failedAt.UTC().Format(time.RFC3339Nano),
	).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("move entry %s of %s to dead letter: %w", id, g.stream, noGroup(err))
	}
	return true, nil
}

// noGroup wraps err with ErrNoGroup when it says the group or the stream is gone: NOGROUP,
// or UNBLOCKED when the key was deleted under a blocked read.
func noGroup(err error) error {
	msg := err.Error()
	// Errors raised inside a script carry the command's error after a prefix of their own.
	if strings.Contains(msg, "NOGROUP") || strings.HasPrefix(msg, "UNBLOCKED") {
		return fmt.Errorf("%w: %w", ErrNoGroup, err)
	}
	return err
}

func messageOf(m redis.XMessage) Message {
	e := Message{ID: m.ID}
	if m.Values == nil {
		return e
	}
	e.Fields = make(map[string]string, len(m.Values))
	for k, v := range m.Values {
		switch v := v.(type) {
		case string:
			e.Fields[k] = v
		case nil:
			e.Fields[k] = ""
		default:
			e.Fields[k] = fmt.Sprint(v)
		}
	}
	return e
}
