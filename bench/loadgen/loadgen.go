package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is an ingest function and what to ask it for.
type Target struct {
	// Addr is ingest's host:port.
	Addr string
	// Source is the CloudEvent source of every request; IDPrefix starts every event id, which
	// ends with the request's number, so ids are unique within a run.
	Source, IDPrefix string
	// Channel is the notifications' channel: webhook (the default) or email.
	Channel string
	// Sink is where every notification is sent: the webhook URL, or the email address.
	Sink string
	// Priority is high or low.
	Priority string
}

// Result is what one run of requests came to.
type Result struct {
	// Requests is the number of HTTP requests sent; Events the notifications they carried.
	Requests, Events int
	// Accepted counts events answered as new (202), Duplicates events answered as repeats.
	Accepted, Duplicates int
	// Errors counts requests that failed or got an answer other than 200 or 202;
	// FirstError describes the first.
	Errors     int
	FirstError string
	// Latencies holds each request's time from being due to its answer.
	Latencies []time.Duration
	// Start and End bound the run.
	Start, End time.Time
}

func (t Target) data(b []byte, i int) []byte {
	channel := cmp.Or(t.Channel, "webhook")
	b = append(b, `{"channel":"`...)
	b = append(b, channel...)
	b = append(b, `","to":"`...)
	b = append(b, t.Sink...)
	b = append(b, `","priority":"`...)
	b = append(b, t.Priority...)
	if channel == "email" {
		b = append(b, `","subject":"Pulse bench `...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","body":"Notification `...)
		b = strconv.AppendInt(b, int64(i), 10)
		return append(b, ` of the bench run."}`...)
	}
	b = append(b, `","data":{"n":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, "}}"...)
}

// single posts event i in binary mode.
func (t Target) single(c *Client, i int) (accepted, duplicate bool, err error) {
	hdr := make([]byte, 0, 256)
	hdr = append(hdr, "Content-Type: application/json\r\nCe-Specversion: 1.0\r\nCe-Type: dev.pulse.notification.requested\r\nCe-Source: "...)
	hdr = append(hdr, t.Source...)
	hdr = append(hdr, "\r\nCe-Id: "...)
	hdr = append(hdr, t.IDPrefix...)
	hdr = strconv.AppendInt(hdr, int64(i), 10)
	hdr = append(hdr, "\r\n"...)
	status, body, err := c.Do("/", hdr, t.data(make([]byte, 0, 128), i))
	if err != nil {
		return false, false, err
	}
	switch status {
	case http.StatusAccepted:
		return true, false, nil
	case http.StatusOK:
		return false, true, nil
	}
	return false, false, fmt.Errorf("status %d: %.200s", status, body)
}

var batchHeader = []byte("Content-Type: application/cloudevents-batch+json\r\n")

// batch posts events first..first+n-1 as one batch.
func (t Target) batch(c *Client, first, n int) (accepted, duplicates int, err error) {
	b := make([]byte, 0, n*(250+len(t.Sink)))
	b = append(b, '[')
	for i := first; i < first+n; i++ {
		if i > first {
			b = append(b, ',')
		}
		b = append(b, `{"specversion":"1.0","id":"`...)
		b = append(b, t.IDPrefix...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","source":"`...)
		b = append(b, t.Source...)
		b = append(b, `","type":"dev.pulse.notification.requested","datacontenttype":"application/json","data":`...)
		b = t.data(b, i)
		b = append(b, '}')
	}
	b = append(b, ']')
	status, body, err := c.Do("/", batchHeader, b)
	if err != nil {
		return 0, 0, err
	}
	if status != http.StatusAccepted && status != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d: %.200s", status, body)
	}
	duplicates = bytes.Count(body, []byte(`"duplicate":true`))
	return n - duplicates, duplicates, nil
}

// recorder gathers the results of concurrent requests.
type recorder struct {
	mu sync.Mutex
	r  Result
}

func (rec *recorder) add(latency time.Duration, events, accepted, duplicates int, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.r.Requests++
	rec.r.Events += events
	rec.r.Latencies = append(rec.r.Latencies, latency)
	if err != nil {
		rec.r.Errors++
		if rec.r.FirstError == "" {
			rec.r.FirstError = err.Error()
		}
		return
	}
	rec.r.Accepted += accepted
	rec.r.Duplicates += duplicates
}

// Singles posts events first..first+n-1, one per request, from concurrency workers that
// each send their next request as soon as the previous one is answered.
func Singles(ctx context.Context, t Target, c *Client, first, n, concurrency int) Result {
	var next atomic.Int64
	next.Store(int64(first))
	rec := &recorder{r: Result{Latencies: make([]time.Duration, 0, n)}}
	rec.r.Start = time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= first+n {
					return
				}
				start := time.Now()
				acc, dup, err := t.single(c, i)
				rec.add(time.Since(start), 1, b2i(acc), b2i(dup), err)
			}
		})
	}
	wg.Wait()
	rec.r.End = time.Now()
	return rec.r
}

// Paced posts events first..first+n-1, one per request, at rate requests per second
// whatever the answers' latency (open loop), with at most inFlight requests outstanding. A
// request's latency runs from when it was due, so time spent waiting for a free slot counts.
func Paced(ctx context.Context, t Target, c *Client, first, n int, rate float64, inFlight int) Result {
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n)
	rec := &recorder{r: Result{Latencies: make([]time.Duration, 0, n)}}
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for j := range jobs {
				acc, dup, err := t.single(c, j.i)
				rec.add(time.Since(j.due), 1, b2i(acc), b2i(dup), err)
			}
		})
	}
	start := time.Now()
	rec.r.Start = start
	interval := float64(time.Second) / rate
	for k := range n {
		due := start.Add(time.Duration(float64(k) * interval))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- job{i: first + k, due: due}
	}
	close(jobs)
	wg.Wait()
	rec.r.End = time.Now()
	return rec.r
}

// Batches posts events first..first+n-1 in batches of size, from concurrency workers.
// Latencies are per batch request.
func Batches(ctx context.Context, t Target, c *Client, first, n, size, concurrency int) Result {
	var next atomic.Int64
	next.Store(int64(first))
	rec := &recorder{}
	rec.r.Start = time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(int64(size))) - size
				if i >= first+n {
					return
				}
				k := min(size, first+n-i)
				start := time.Now()
				acc, dup, err := t.batch(c, i, k)
				rec.add(time.Since(start), k, acc, dup, err)
			}
		})
	}
	wg.Wait()
	rec.r.End = time.Now()
	return rec.r
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
