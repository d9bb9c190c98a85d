package batch

import (
	"context"
	"fmt"
	"sync"
)

// Func does the work of one batch: it gets the items of every call gathered, in order, and
// returns one result per item, or an error that fails every call in the batch.
type Func[In, Out any] func(ctx context.Context, items []In) ([]Out, error)

// Batcher runs Func over the items of concurrent calls. While a batch runs, the calls that
// arrive wait and go into the next one; no call ever waits for a timer, so a lone call runs
// at once and a busy system gets large batches.
type Batcher[In, Out any] struct {
	fn       Func[In, Out]
	maxItems int
	workers  int
	jobs     chan *call[In, Out]
	wg       sync.WaitGroup
	ctx      context.Context
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
// more) and runs up to workers batches at once. ctx bounds every batch; cancel it only after
// Stop.
func New[In, Out any](ctx context.Context, fn Func[In, Out], maxItems, workers int) *Batcher[In, Out] {
	return &Batcher[In, Out]{fn: fn, maxItems: max(maxItems, 1), workers: max(workers, 1),
		jobs: make(chan *call[In, Out], maxItems), ctx: ctx}
}

// Start starts the workers.
func (b *Batcher[In, Out]) Start() {
	for range b.workers {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.work()
		}()
	}
}

// Stop finishes the calls already made and stops the workers. No call may be made after.
func (b *Batcher[In, Out]) Stop() {
	close(b.jobs)
	b.wg.Wait()
}

// Do runs items in a shared batch and returns their results, in order. Once the items are in
// a batch, the batch runs to its end even if ctx is cancelled, and Do waits for it: the caller
// learns what happened to its items.
func (b *Batcher[In, Out]) Do(ctx context.Context, items ...In) ([]Out, error) {
	c := &call[In, Out]{items: items, done: make(chan result[Out], 1)}
	select {
	case b.jobs <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := <-c.done
	return r.out, r.err
}

func (b *Batcher[In, Out]) work() {
	for first := range b.jobs {
		calls := []*call[In, Out]{first}
		n := len(first.items)
	gather:
		for n < b.maxItems {
			select {
			case c, ok := <-b.jobs:
				if !ok {
					break gather
				}
				calls = append(calls, c)
				n += len(c.items)
			default:
				break gather
			}
		}
		b.run(calls, n)
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
func (b *Batcher[In, Out]) Queued() int { return len(b.jobs) }
