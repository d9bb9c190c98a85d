package capture

import (
	"maps"
	"sync"
)

// tally counts what a capture accepted by the notification id each carries, and apart those
// it could not verify or attribute. It is safe for concurrent use.
//
// By default it keeps every id it has seen. With a bound (remember), it keeps two
// generations of ids, each of up to that many, and drops the older generation when the newer
// fills: its memory stays bounded through a long run, and a repeat is still recognised when
// it comes within the last bound-to-twice-the-bound ids (a redelivery after a lapsed lease
// comes a minute or so later, not millions of deliveries later).
type tally struct {
	mu       sync.Mutex
	remember int
	counts   map[string]int // the current generation
	older    map[string]int // the previous generation, when bounded
	total    int
	distinct int
	apart    int
}

// add counts one message carrying notification id.
func (t *tally) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.total++
	if n, ok := t.older[id]; ok {
		// Seen in the previous generation: it moves to the current one with its count.
		delete(t.older, id)
		t.counts[id] = n
	}
	if t.counts[id] == 0 {
		t.distinct++
	}
	t.counts[id]++
	if t.remember > 0 && len(t.counts) >= t.remember {
		t.older, t.counts = t.counts, make(map[string]int, t.remember)
	}
}

// addApart counts one message that carries no notification id it could trust.
func (t *tally) addApart() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apart++
}

// count returns how many messages carried notification id (0 when it is no longer
// remembered).
func (t *tally) count(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[id] + t.older[id]
}

// stats returns the messages counted by id, the distinct ids among them, and those counted
// apart.
func (t *tally) stats() (total, distinct, apart int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, t.distinct, t.apart
}

// all returns a copy of the counts by the ids it remembers.
func (t *tally) all() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.counts)+len(t.older))
	maps.Copy(out, t.older)
	maps.Copy(out, t.counts)
	return out
}
