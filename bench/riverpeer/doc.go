// Package riverpeer is the bench's River baseline: a River (github.com/riverqueue/river)
// worker that does per notification what Pulse's deliver path and the old stack's Celery task
// do — load the notification row, POST the signed webhook to its recipient, record the
// outcome — so that the drain scenarios can set Pulse beside a well-kept Go job queue on the
// same PostgreSQL cluster.
//
// It owns River's side of a drain run: migrating River's tables into the run's schema,
// enqueueing one job per notification before the worker starts, and the worker itself (run as
// its own process by bench/riverworker, so that its CPU and memory are measured like Pulse's
// and Celery's). It does not own the notifications table, the sink or the measurement; those
// are the bench's. No Pulse function imports it.
package riverpeer
