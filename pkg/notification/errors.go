package notification

import "errors"

// Errors of a notification's life. The store returns them; ceserver maps them to status codes.
var (
	// ErrNotFound means no notification matches.
	ErrNotFound = errors.New("notification not found")

	// ErrNotClaimable means the notification is not queued: another delivery has it, or it has
	// finished, been cancelled or expired. The dispatch that asked for it is a duplicate.
	ErrNotClaimable = errors.New("notification is not queued")

	// ErrLeaseLost means the claim a delivery held was taken back (its lease ran out and cron
	// handed the notification to another attempt) before the outcome could be recorded.
	ErrLeaseLost = errors.New("claim on notification was lost")

	// ErrNotCancellable means the notification can no longer be cancelled: it has finished
	// (delivered, failed, cancelled or expired) or is being sent right now.
	ErrNotCancellable = errors.New("notification can no longer be cancelled")

	// ErrSuppressionNotFound means the recipient named is not suppressed: there is no
	// suppression to remove.
	ErrSuppressionNotFound = errors.New("suppression not found")
)

// UnavailableError is an error that ceserver answers 503, so the caller tries again: a
// datastore could not be reached, or the function is closing. It is a string so that each
// owner declares its own sentinel, as store.ErrUnavailable and queue.ErrUnavailable do.
type UnavailableError string

func (e UnavailableError) Error() string { return string(e) }

// Unavailable reports true; ceserver looks for this method, not for the type.
func (UnavailableError) Unavailable() bool { return true }
