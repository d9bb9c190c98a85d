package metrics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// QueueName is the queue_name label of a priority's stream: "high_priority" or
// "low_priority", the names of the old system's queues.
func QueueName(p notification.Priority) string {
	return string(p) + "_priority"
}

// maxLagScan bounds how many entries one scrape counts with XRANGE when Redis cannot tell a
// group's lag.
const maxLagScan = 100_000

// lagScanPage is how many entries one XRANGE of that count reads.
const lagScanPage = 1000

// queueCollector reports how many entries of each priority's stream are not delivered yet and
// how old the oldest of them is.
type queueCollector struct {
	client redis.Cmdable
	keys   queue.Keys
	group  string
	now    func() time.Time
}

func newQueueCollector(client redis.Cmdable, keys queue.Keys, group string, now func() time.Time) *queueCollector {
	return &queueCollector{
		client: client, keys: keys, group: group, now: now,
	}
}

// Describe implements collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueLengthDesc
	ch <- celeryQueueLengthDesc
	ch <- queueOldestAgeDesc
}

// Update implements collector.
func (c *queueCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	var errs []error
	for _, p := range notification.Priorities {
		b, err := c.backlog(ctx, c.keys.Stream(string(p)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		age := 0.0
		if b.length > 0 && b.oldest != "" {
			age = max(0, c.now().Sub(entryTime(b.oldest)).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(queueLengthDesc, prometheus.GaugeValue, float64(b.length), QueueName(p))
		ch <- prometheus.MustNewConstMetric(celeryQueueLengthDesc, prometheus.GaugeValue, float64(b.length), QueueName(p))
		ch <- prometheus.MustNewConstMetric(queueOldestAgeDesc, prometheus.GaugeValue, age, QueueName(p))
	}
	return errors.Join(errs...)
}

// backlog is what a stream holds that is not delivered yet.
type backlog struct {
	length int64
	// pending is how many of them a consumer has read and not acknowledged yet.
	pending int64
	// oldest is the id of the oldest entry not delivered yet, "" when there is none.
	oldest string
}

// backlog reads the backlog of stream as the consumer group sees it. The reads are not one
// atomic step: an entry delivered between two of them may be counted in both or neither, which
// a gauge sampled every few seconds can bear.
func (c *queueCollector) backlog(ctx context.Context, stream string) (backlog, error) {
	groups, err := c.client.XInfoGroups(ctx, stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return backlog{}, nil
		}
		return backlog{}, fmt.Errorf("read groups of %s: %w", stream, err)
	}
	var g *redis.XInfoGroup
	for i := range groups {
		if groups[i].Name == c.group {
			g = &groups[i]
		}
	}
	if g == nil {
		// The source creates its group from the first entry: every entry is still to come.
		n, err := c.client.XLen(ctx, stream).Result()
		if err != nil {
			return backlog{}, fmt.Errorf("read length of %s: %w", stream, err)
		}
		first, err := c.firstAfter(ctx, stream, "-")
		if err != nil {
			return backlog{}, err
		}
		return backlog{length: n, oldest: first}, nil
	}

	lag := g.Lag
	if lag < 0 {
		if lag, err = c.countAfter(ctx, stream, g.LastDeliveredID); err != nil {
			return backlog{}, err
		}
	}
	b := backlog{length: lag + g.Pending, pending: g.Pending}
	if g.Pending > 0 {
		p, err := c.client.XPending(ctx, stream, c.group).Result()
		if err != nil {
			return backlog{}, fmt.Errorf("read pending entries of %s: %w", stream, err)
		}
		b.oldest = p.Lower
	}
	if lag > 0 && b.oldest == "" {
		// Pending entries were read before any entry after the group's position, so the
		// oldest unread entry matters only when nothing is pending.
		if b.oldest, err = c.firstAfter(ctx, stream, "("+g.LastDeliveredID); err != nil {
			return backlog{}, err
		}
	}
	return b, nil
}

// firstAfter returns the id of the first entry of stream from start on ("-" for the first,
// "(id" for the first after id), or "" when there is none.
func (c *queueCollector) firstAfter(ctx context.Context, stream, start string) (string, error) {
	msgs, err := c.client.XRangeN(ctx, stream, start, "+", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read first entry of %s from %s: %w", stream, start, err)
	}
	if len(msgs) == 0 {
		return "", nil
	}
	return msgs[0].ID, nil
}

// countAfter counts the entries of stream after the id last, up to maxLagScan.
func (c *queueCollector) countAfter(ctx context.Context, stream, last string) (int64, error) {
	var n int64
	for n < maxLagScan {
		msgs, err := c.client.XRangeN(ctx, stream, "("+last, "+", lagScanPage).Result()
		if err != nil {
			return 0, fmt.Errorf("count entries of %s after %s: %w", stream, last, err)
		}
		n += int64(len(msgs))
		if len(msgs) < lagScanPage {
			break
		}
		last = msgs[len(msgs)-1].ID
	}
	return min(n, maxLagScan), nil
}

// entryTime is when the entry with stream id id was added: the id's first part is a Unix time
// in milliseconds.
func entryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// newDeadLetterCollector reports the length of each priority's dead-letter stream.
func newDeadLetterCollector(client redis.Cmdable, keys queue.Keys) collector {
	return collectorFunc{deadLetterLengthDesc, func(ctx context.Context, ch chan<- prometheus.Metric) error {
		lens, err := deadLetterLengths(ctx, client, keys)
		if err != nil {
			return err
		}
		for i, p := range notification.Priorities {
			ch <- prometheus.MustNewConstMetric(deadLetterLengthDesc, prometheus.GaugeValue, float64(lens[i]), QueueName(p))
		}
		return nil
	}}
}

// deadLetterLengths returns the length of each priority's dead-letter stream, in the order of
// notification.Priorities.
func deadLetterLengths(ctx context.Context, client redis.Cmdable, keys queue.Keys) ([]int64, error) {
	pipe := client.Pipeline()
	cmds := make([]*redis.IntCmd, len(notification.Priorities))
	for i, p := range notification.Priorities {
		cmds[i] = pipe.XLen(ctx, keys.DeadLetter(string(p)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read length of dead-letter streams: %w", err)
	}
	lens := make([]int64, len(cmds))
	for i, cmd := range cmds {
		lens[i] = cmd.Val()
	}
	return lens, nil
}
