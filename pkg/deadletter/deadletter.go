package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// maxList bounds how many entries of each dead-letter stream one call reads.
const maxList = 10_000

// ErrNotFound means a dead-letter entry id names no entry of any dead-letter stream.
var ErrNotFound = errors.New("no such dead-letter entry")

// Entry is a dead-letter entry and the notification it refers to.
type Entry struct {
	queue.DeadLetter
	// Status is the notification's status now; "" when no notification has that id (purged,
	// or the entry had none).
	Status notification.Status `json:"status"`
}

// Redriven says what Redrive did with one dead-letter entry.
type Redriven struct {
	Priority string `json:"priority"`
	ID       string `json:"id"`
	// NotificationID is the notification the entry refers to.
	NotificationID string `json:"notification_id"`
	// Status is the notification's status when the entry was redriven.
	Status notification.Status `json:"status"`
	// Outcome is queue.Redriven, queue.Dropped or queue.Missing.
	Outcome string `json:"outcome"`
}

// Manager lists and redrives dead letters.
type Manager struct {
	store *store.Store
	redis redis.UniversalClient
	keys  queue.Keys
	now   func() time.Time
}

// New returns a Manager; now stamps the enqueued_at of redriven entries (nil means time.Now).
func New(st *store.Store, rdb redis.UniversalClient, keys queue.Keys, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{store: st, redis: rdb, keys: keys, now: now}
}

// List returns the entries of every priority's dead-letter stream, high first, oldest first
// within a priority, at most limit per priority (0 or more than 10,000 means 10,000).
func (m *Manager) List(ctx context.Context, limit int64) ([]Entry, error) {
	if limit <= 0 || limit > maxList {
		limit = maxList
	}
	var dead []queue.DeadLetter
	for _, p := range notification.Priorities {
		d, err := queue.DeadLetters(ctx, m.redis, m.keys, string(p), limit)
		if err != nil {
			return nil, err
		}
		dead = append(dead, d...)
	}
	ids := make([]string, len(dead))
	for i, d := range dead {
		ids[i] = d.NotificationID
	}
	statuses, err := m.store.Statuses(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(dead))
	for i, d := range dead {
		out[i] = Entry{DeadLetter: d, Status: statuses[d.NotificationID]}
	}
	return out, nil
}

// Redrive moves the dead-letter entries named by ids (all of them when ids is empty) back to
// their priority's stream, so the deliver function gets them again. Only entries whose
// notification is still queued are added back; the others are dropped from the dead-letter
// stream, since deliver would skip them anyway: a notification in any other state is being
// handled by its retry schedule or cron, or is finished. An id that is in no dead-letter stream
// is an error wrapping ErrNotFound, and nothing is changed.
//
// The status is read before the move: a notification that leaves queued in between gets an
// entry deliver skips, which costs nothing. Two redrives at once add each entry back once.
func (m *Manager) Redrive(ctx context.Context, ids []string) ([]Redriven, error) {
	entries, err := m.List(ctx, maxList)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		byID := make(map[string]Entry, len(entries))
		for _, e := range entries {
			byID[e.ID] = e
		}
		picked := make([]Entry, 0, len(ids))
		var missing []string
		for _, id := range ids {
			e, ok := byID[id]
			if !ok {
				missing = append(missing, id)
				continue
			}
			picked = append(picked, e)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("redrive %s: %w", strings.Join(missing, ", "), ErrNotFound)
		}
		entries = picked
	}

	var out []Redriven
	for _, p := range notification.Priorities {
		var redrive, drop []string
		var mine []Entry
		for _, e := range entries {
			if e.Priority != string(p) {
				continue
			}
			mine = append(mine, e)
			if e.Status == notification.Queued {
				redrive = append(redrive, e.ID)
			} else {
				drop = append(drop, e.ID)
			}
		}
		outcomes, err := queue.Redrive(ctx, m.redis, m.keys, string(p), redrive, drop, m.now())
		if err != nil {
			return out, err
		}
		for _, e := range mine {
			out = append(out, Redriven{Priority: e.Priority, ID: e.ID, NotificationID: e.NotificationID,
				Status: e.Status, Outcome: outcomes[e.ID]})
		}
	}
	return out, nil
}
