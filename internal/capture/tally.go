package capture

import (
	"maps"
	"sync"
)

// tally counts what a capture accepted by the notification id each carries, and apart those
// it could not verify or attribute. It is safe for concurrent use.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
	apart  int
}

// add counts one message carrying notification id.
func (t *tally) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[id]++
	t.total++
}

// addApart counts one message that carries no notification id it could trust.
func (t *tally) addApart() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apart++
}

// count returns how many messages carried notification id.
func (t *tally) count(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[id]
}

// stats returns the messages counted by id, the distinct ids among them, and those counted
// apart.
func (t *tally) stats() (total, distinct, apart int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, len(t.counts), t.apart
}

// all returns a copy of the counts by id.
func (t *tally) all() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.counts))
	maps.Copy(out, t.counts)
	return out
}
