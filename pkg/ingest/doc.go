// Package ingest owns the front door: it reads dev.pulse.notification.requested CloudEvents,
// checks credentials and input, commits notifications to PostgreSQL in transactions shared by
// concurrent requests (group commit), hands queued ones to their stream, and serves the status
// API, where a notification not yet finished can also be cancelled (DELETE, or a
// dev.pulse.notification.cancel event).
//
// A 2xx from ingest means the notification is committed. Delivery is not ingest's business.
package ingest
