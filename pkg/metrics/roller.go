package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/pulse-knative/pulse/pkg/store"
)

// foldMargin is how much older than the failure window the minutes a roll-up folds away are,
// so that replicas whose clocks differ a little never fold a minute another one still reads.
const foldMargin = 5 * time.Minute

// RollerConfig configures a Roller.
type RollerConfig struct {
	// Store holds the maintained counts.
	Store *store.Store
	// Batch bounds the changes one roll-up statement moves. Zero means 10000.
	Batch int
	// Interval is the time between two rounds of Run. Zero means 10s.
	Interval time.Duration
	// FailureWindow is the longest window the failure rate is read over: minutes older than
	// it (and a margin) are folded away. Zero means 15m.
	FailureWindow time.Duration
	// Now is the clock the failure window is measured with; nil means time.Now.
	Now func() time.Time
	// Logger receives the errors of the rounds Run starts.
	Logger *slog.Logger
}

// Roller rolls the changes recorded to the maintained counts of notifications up into
// them (store.RollUpCounts), so that reading the counts stays cheap. It works on its own
// schedule rather than inside scrapes: a scrape never waits for it, and a backlog (after the
// metrics function was down for a day, say) is worked off batch after batch in one round
// instead of one batch per scrape. Rollers of several replicas may run at once.
type Roller struct {
	store    *store.Store
	batch    int
	interval time.Duration
	window   time.Duration
	now      func() time.Time
	logger   *slog.Logger
}

// NewRoller returns a roller configured by cfg.
func NewRoller(cfg RollerConfig) *Roller {
	r := &Roller{store: cfg.Store, batch: cfg.Batch, interval: cfg.Interval, window: cfg.FailureWindow,
		now: cfg.Now, logger: cfg.Logger}
	if r.batch <= 0 {
		r.batch = 10_000
	}
	if r.interval <= 0 {
		r.interval = 10 * time.Second
	}
	if r.window <= 0 {
		r.window = 15 * time.Minute
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// Run rolls up at once and then every interval until ctx is done. A round that fails is
// logged and the next one tries again.
func (r *Roller) Run(ctx context.Context) {
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		start := time.Now()
		n, err := r.RollUp(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.logger.Warn("roll up notification counts", "error", err.Error(), "rolled_up", n)
		case n > 0:
			r.logger.Debug("rolled up notification counts", "rolled_up", n, "took", time.Since(start).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// vacuumAfter is how many changes a round rolls up before it vacuums the count tables: fewer
// dead rows cost readers less than the vacuum.
const vacuumAfter = 1000

// RollUp rolls up batch after batch until none is left, vacuums the count tables when it
// rolled up many, and returns how many changes it rolled up.
func (r *Roller) RollUp(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.store.RollUpCounts(ctx, r.batch, r.now().Add(-r.window-foldMargin))
		total += n
		if err != nil {
			return total, err
		}
		if n < r.batch {
			break
		}
	}
	if total >= vacuumAfter {
		return total, r.store.VacuumCounts(ctx)
	}
	return total, nil
}
