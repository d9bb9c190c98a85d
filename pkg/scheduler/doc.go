// Package scheduler owns what Celery Beat did: the cron jobs Knative PingSources call.
//
// The jobs keep the promise that every committed notification reaches a terminal state,
// whatever Redis, a stream source, a deliver function or a missed tick does:
//
//   - release moves scheduled notifications whose send_at has come, and retrying ones whose
//     next attempt is due, to queued, then adds them to their priority's stream;
//   - recover adds notifications that have stayed queued too long to their stream again (their
//     entry was lost) and takes back those whose lease ran out while sending (their deliver
//     function died), for another attempt or, after the last one, as failed;
//   - expire moves notifications past their expires_at that were never delivered to expired;
//   - purge deletes finished notifications, and their attempts, older than the retention;
//   - trim deletes the entries of each stream that every consumer group has acknowledged.
//
// Every job works in bounded batches that two runs at once share (FOR UPDATE SKIP LOCKED) and
// moves rows with conditional UPDATEs, so running a job twice at once, or again after a missed
// tick, is harmless; a run goes on batch after batch until one comes back short or its time
// budget is spent, so a job catches up by itself. A job that finds nothing costs one index
// look-up.
//
// The package does not say when jobs run: the PingSources' schedules do
// (config/40-cron-schedules.yaml), and internal/devping plays them for `pulse dev`. It does not
// deliver anything either.
package scheduler
