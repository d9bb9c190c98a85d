package capture

import "sync"

// inbox keeps what a capture accepted, oldest first, and signals each arrival. It is safe for
// concurrent use.
type inbox[T any] struct {
	mu       sync.Mutex
	items    []T
	received chan struct{}
}

func newInbox[T any]() *inbox[T] {
	return &inbox[T]{received: make(chan struct{}, 1)}
}

// add keeps item and signals Received. When number is not nil it first gives the item its
// place among those kept (1 for the first), as the provider's id for it; add returns the item
// as kept.
func (b *inbox[T]) add(item T, number func(item *T, n int)) T {
	b.mu.Lock()
	if number != nil {
		number(&item, len(b.items)+1)
	}
	b.items = append(b.items, item)
	b.mu.Unlock()
	notify(b.received)
	return item
}

// all returns a copy of the items kept so far.
func (b *inbox[T]) all() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]T(nil), b.items...)
}

// notify signals ch without blocking: arrivals a waiter has not taken yet coalesce into one.
func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
