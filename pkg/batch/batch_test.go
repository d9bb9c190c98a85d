package batch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/batch"
)

func TestConcurrentCallsShareBatches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sizes []int
	release := make(chan struct{})
	first := make(chan struct{}, 1)
	double := func(ctx context.Context, items []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(items))
		mu.Unlock()
		select {
		case first <- struct{}{}:
			<-release // hold the first batch so that the others queue up behind it
		default:
		}
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = 2 * v
		}
		return out, nil
	}
	b := batch.New(context.Background(), double, 100, 1)
	b.Start()
	defer b.Stop()

	var wg sync.WaitGroup
	wg.Go(func() {
		out, err := b.Do(context.Background(), 1)
		require.NoError(t, err)
		require.Equal(t, []int{2}, out)
	})
	<-first
	for i := range 10 {
		wg.Go(func() {
			out, err := b.Do(context.Background(), i, i+100)
			require.NoError(t, err)
			require.Equal(t, []int{2 * i, 2 * (i + 100)}, out)
		})
	}
	// Wait until all ten calls are queued, then let the first batch finish.
	require.Eventually(t, func() bool { return b.Queued() == 10 }, time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, sizes[0])
	total := 0
	for _, s := range sizes[1:] {
		total += s
	}
	require.Equal(t, 20, total)
	require.Less(t, len(sizes), 11, "the queued calls shared batches: %v", sizes)
}

// TestSecondBatchOnlyForManyItems holds a batch and checks that single items wait for it,
// however many workers there are, while enough waiting items start a batch beside it.
func TestSecondBatchOnlyForManyItems(t *testing.T) {
	t.Parallel()
	started := make(chan int, 10)
	release := make(chan struct{})
	echo := func(ctx context.Context, items []int) ([]int, error) {
		started <- len(items)
		<-release
		return items, nil
	}
	// At most 100 items a batch, so a batch starts beside another from 25 waiting items.
	b := batch.New(context.Background(), echo, 100, 2)
	b.Start()
	defer b.Stop()
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before Stop, which waits for the held batches

	var wg sync.WaitGroup
	do := func(items ...int) {
		wg.Go(func() {
			out, err := b.Do(context.Background(), items...)
			assert.NoError(t, err)
			assert.Equal(t, items, out)
		})
	}
	do(0)
	require.Equal(t, 1, <-started)
	for i := range 10 {
		do(i + 1)
	}
	require.Eventually(t, func() bool { return b.Queued() == 10 }, time.Second, time.Millisecond)
	select {
	case n := <-started:
		t.Fatalf("a batch of %d items started beside the first, with fewer than 25 waiting", n)
	case <-time.After(50 * time.Millisecond):
	}

	many := make([]int, 30)
	do(many...)
	select {
	case n := <-started:
		require.Equal(t, 40, n, "the second batch holds everything waiting")
	case <-time.After(5 * time.Second):
		t.Fatal("40 waiting items did not start a second batch")
	}
	free()
	wg.Wait()
}

func TestErrorFailsEveryCallOfTheBatch(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	b := batch.New(context.Background(), func(context.Context, []string) ([]string, error) { return nil, boom }, 10, 2)
	b.Start()
	defer b.Stop()
	_, err := b.Do(context.Background(), "a")
	require.ErrorIs(t, err, boom)
}

func TestWrongResultCountIsAnError(t *testing.T) {
	t.Parallel()
	b := batch.New(context.Background(), func(_ context.Context, in []string) ([]string, error) { return in[:0], nil }, 10, 1)
	b.Start()
	defer b.Stop()
	_, err := b.Do(context.Background(), "a")
	require.ErrorContains(t, err, "gave 0 results")
}

var errPoison = errors.New("poison item")

// TestIsolateFindsTheBadCall: a batch failing because of one call's items is run again in
// parts; that call alone gets the error, every other call its results, and a call's items are
// never split. Other errors still fail the whole batch.
func TestIsolateFindsTheBadCall(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var runs [][]int
	release := make(chan struct{})
	first := make(chan struct{}, 1)
	fn := func(ctx context.Context, items []int) ([]int, error) {
		mu.Lock()
		runs = append(runs, items)
		mu.Unlock()
		select {
		case first <- struct{}{}:
			<-release
		default:
		}
		for _, v := range items {
			switch {
			case v < 0:
				return nil, errPoison
			case v == 1000:
				return nil, errors.New("connection lost")
			}
		}
		return items, nil
	}
	b := batch.New(context.Background(), fn, 100, 1)
	b.Isolate(func(err error) bool { return errors.Is(err, errPoison) })
	b.Start()
	defer b.Stop()

	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := b.Do(context.Background(), 0)
		assert.NoError(t, err)
	})
	<-first
	results := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			items := []int{10 * (i + 1), 10*(i+1) + 1}
			if i == 6 {
				items[1] = -1
			}
			out, err := b.Do(context.Background(), items...)
			results[i] = err
			if err == nil {
				assert.Equal(t, items, out)
			}
		})
	}
	require.Eventually(t, func() bool { return b.Queued() == 10 }, time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range results {
		if i == 6 {
			require.ErrorIs(t, err, errPoison)
			continue
		}
		require.NoError(t, err, "call %d", i)
	}
	mu.Lock()
	for _, r := range runs {
		for k, v := range r {
			if v < 0 {
				require.Equal(t, 70, r[k-1], "the bad call's items stay together")
			}
		}
	}
	// The first call, the shared batch, then halves: fewer than one run per call.
	require.Less(t, len(runs), 1+1+10, "halving, not one run per call")
	mu.Unlock()

	// An error tied to no item fails every call sharing the batch, as before.
	_, err := b.Do(context.Background(), 1000)
	require.ErrorContains(t, err, "connection lost")
}
