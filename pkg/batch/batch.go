package batch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Func does the work of one batch: it gets the items of every call gathered, in order, and
// returns one result per item, or an error that fails every call in the batch.
type Func[In, Out any] func(ctx context.Context, items []In) ([]Out, error)

// Batcher runs Func over the items of concurrent calls. While a batch runs, the calls that
// arrive wait and go into the next one; no call ever waits for a timer, so a lone call runs
// at once and a busy system gets large batches.
//
// Up to workers batches run at once, but a batch starts beside others only when at least
// parallelAt items are waiting for it: a second statement for a handful of rows costs the
// database more than it saves, while a second statement for a full batch keeps it busy. So
// single calls under load pile into one large batch, and calls bringing many items each get
// a batch of their own.
type Batcher[In, Out any] struct {
	fn         Func[In, Out]
	maxItems   int
	workers    int
	parallelAt int
	jobs       chan *call[In, Out]
	waiting    atomic.Int64
	wg         sync.WaitGroup
	ctx        context.Context
	// isolate reports whether a batch's error may be the fault of one call's items.
	isolate func(error) bool
}

type call[In, Out any] struct {
	items []In
	done  chan result[Out]
}

type result[Out any] struct {
	out []Out
	err error
}

// New returns a batcher that puts at most maxItems items in a batch (a single call may bring
// more) and runs up to workers batches at once, a batch beside others only when at least a
// quarter of maxItems is waiting. ctx bounds every batch; cancel it only after Stop.
func New[In, Out any](ctx context.Context, fn Func[In, Out], maxItems, workers int) *Batcher[In, Out] {
	maxItems = max(maxItems, 1)
	return &Batcher[In, Out]{fn: fn, maxItems: maxItems, workers: max(workers, 1), parallelAt: max(maxItems/4, 1),
		jobs: make(chan *call[In, Out], maxItems), ctx: ctx}
}

// Isolate makes a batch that fails with an error for which isolate is true run again in
// halves, and so on down to single calls, so that a call whose items can never be stored
// (bad input that passed validation) gets the error alone and the calls that shared its batch
// get their results. A call is never split: its items succeed or fail together. Errors for
// which isolate is false, such as a lost connection, still fail every call in the batch.
// Call it before Start.
func (b *Batcher[In, Out]) Isolate(isolate func(error) bool) { b.isolate = isolate }

// Start starts the batcher.
func (b *Batcher[In, Out]) Start() {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.dispatch()
	}()
}

// Stop finishes the calls already made and stops the batcher. No call may be made after.
func (b *Batcher[In, Out]) Stop() {
	close(b.jobs)
	b.wg.Wait()
}

// Do runs items in a shared batch and returns their results, in order. ctx bounds only the
// hand-over to the batcher: once it has the items, they run in a batch to its end even if ctx
// is cancelled, and Do waits for it, so the caller learns what happened to its items.
func (b *Batcher[In, Out]) Do(ctx context.Context, items ...In) ([]Out, error) {
	c := &call[In, Out]{items: items, done: make(chan result[Out], 1)}
	b.waiting.Add(1)
	select {
	case b.jobs <- c:
	case <-ctx.Done():
		b.waiting.Add(-1)
		return nil, ctx.Err()
	}
	r := <-c.done
	return r.out, r.err
}

// dispatch gathers calls and starts batches: one whenever none is running, another beside
// those running while fewer than workers run and parallelAt items wait. When the calls stop
// coming (Stop), whatever waits is run and dispatch returns once every batch has ended.
func (b *Batcher[In, Out]) dispatch() {
	var pending []*call[In, Out]
	waiting := 0 // items in pending
	running := 0
	ended := make(chan struct{}, b.workers)
	jobs := b.jobs
	take := func(c *call[In, Out]) {
		pending = append(pending, c)
		waiting += len(c.items)
	}
	for {
		for len(pending) > 0 && running < b.workers && (running == 0 || waiting >= b.parallelAt || jobs == nil) {
			n, k := 0, 0
			for k < len(pending) && n < b.maxItems {
				n += len(pending[k].items)
				k++
			}
			// A copy, so that the calls can leave pending's array once their batch has run.
			calls := slices.Clone(pending[:k])
			clear(pending[:k])
			pending = pending[k:]
			waiting -= n
			b.waiting.Add(-int64(k))
			running++
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.run(calls, n)
				ended <- struct{}{}
			}()
		}
		if jobs == nil && len(pending) == 0 {
			return // the running batches end on their own; Stop waits for them
		}
		select {
		case c, ok := <-jobs:
			if !ok {
				jobs = nil
				continue
			}
			take(c)
			// Take whatever else is already there, so that a batch starting now holds it.
		more:
			for waiting < b.maxItems {
				select {
				case c, ok := <-jobs:
					if !ok {
						jobs = nil
						break more
					}
					take(c)
				default:
					break more
				}
			}
		case <-ended:
			running--
		}
	}
}

func (b *Batcher[In, Out]) run(calls []*call[In, Out], n int) {
	items := make([]In, 0, n)
	for _, c := range calls {
		items = append(items, c.items...)
	}
	out, err := b.fn(b.ctx, items)
	if err == nil && len(out) != len(items) {
		err = fmt.Errorf("batch of %d items gave %d results", len(items), len(out))
	}
	if err != nil && len(calls) > 1 && b.isolate != nil && b.isolate(err) {
		// Halving finds one bad call in about 2·log2(calls) runs, each committing what it can.
		half := len(calls) / 2
		b.run(calls[:half], countItems(calls[:half]))
		b.run(calls[half:], countItems(calls[half:]))
		return
	}
	for _, c := range calls {
		if err != nil {
			c.done <- result[Out]{err: err}
			continue
		}
		c.done <- result[Out]{out: out[:len(c.items):len(c.items)]}
		out = out[len(c.items):]
	}
}

// Queued returns the number of calls waiting for a batch.
func (b *Batcher[In, Out]) Queued() int { return int(b.waiting.Load()) }

func countItems[In, Out any](calls []*call[In, Out]) int {
	n := 0
	for _, c := range calls {
		n += len(c.items)
	}
	return n
}
