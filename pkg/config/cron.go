package config

import (
	"fmt"
	"time"
)

// Cron configures functions/cron, the jobs PingSources call. The schedules are not here: they
// are the PingSources' own (config/40-cron-schedules.yaml), which `pulse dev` reads too.
type Cron struct {
	Database
	Redis
	Server
	Log

	// BatchSize bounds the rows one statement of a job moves or deletes, and so how long it
	// holds its row locks. A job runs batch after batch until one comes back short.
	BatchSize int `envconfig:"PULSE_CRON_BATCH_SIZE" default:"500"`
	// Budget bounds how long one run of a job keeps starting batches while it catches up on
	// a backlog; what is left waits for the next tick. It must be shorter than
	// PULSE_HTTP_WRITE_TIMEOUT so the answer still reaches the PingSource.
	Budget time.Duration `envconfig:"PULSE_CRON_BUDGET" default:"20s"`
	// RecoverQueuedAfter is how long a notification may stay queued before the recover job
	// adds it to its stream again: its entry was lost (a failed XADD, a flushed Redis, a
	// destroyed consumer group) or is stuck. It should be longer than the stream source's
	// PULSE_STREAM_RECLAIM_IDLE plus PULSE_SINK_TIMEOUT, so entries that are merely slow are
	// not doubled; a duplicate entry is harmless, only wasted work.
	RecoverQueuedAfter time.Duration `envconfig:"PULSE_RECOVER_QUEUED_AFTER" default:"5m"`
	// Retention is how long finished notifications (delivered, failed, cancelled, expired)
	// and their delivery attempts are kept before the purge job deletes them.
	Retention time.Duration `envconfig:"PULSE_RETENTION" default:"720h"`
	// DeadLetterRetention is how long the trim job keeps an entry of a dead-letter stream
	// after the stream source gave up on it; 0 keeps entries however old. An operator lists
	// and redrives them with `pulse deadletter` meanwhile.
	DeadLetterRetention time.Duration `envconfig:"PULSE_DEAD_LETTER_RETENTION" default:"336h"`
	// DeadLetterMaxLen is how many entries the trim job leaves in each dead-letter stream,
	// the newest; 0 means no bound. It bounds Redis memory when a long outage gives up on
	// many entries at once.
	DeadLetterMaxLen int64 `envconfig:"PULSE_DEAD_LETTER_MAX_LEN" default:"100000"`
}

func (c *Cron) validate() error {
	if c.BatchSize < 1 {
		return fmt.Errorf("PULSE_CRON_BATCH_SIZE must be positive")
	}
	if c.Budget <= 0 || c.Budget >= c.WriteTimeout {
		return fmt.Errorf("PULSE_CRON_BUDGET (%s) must be positive and shorter than PULSE_HTTP_WRITE_TIMEOUT (%s)", c.Budget, c.WriteTimeout)
	}
	if c.RecoverQueuedAfter <= 0 {
		return fmt.Errorf("PULSE_RECOVER_QUEUED_AFTER must be positive")
	}
	if c.Retention <= 0 {
		return fmt.Errorf("PULSE_RETENTION must be positive")
	}
	if c.DeadLetterRetention < 0 {
		return fmt.Errorf("PULSE_DEAD_LETTER_RETENTION must not be negative")
	}
	if c.DeadLetterMaxLen < 0 {
		return fmt.Errorf("PULSE_DEAD_LETTER_MAX_LEN must not be negative")
	}
	return nil
}
