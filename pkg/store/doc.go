// Package store owns Pulse's PostgreSQL schema and every SQL statement: embedded migrations
// applied under an advisory lock, inserting notifications in shared transactions, and the
// conditional UPDATEs that move a notification from one state to the next.
//
// Every transition is one UPDATE whose WHERE names the states it may leave, so a duplicate
// stream entry, a second cron run or a racing operator can never move a row twice. Table names
// are never schema-qualified: tests isolate themselves by search_path.
//
// The store does not decide what happens next (delivery and scheduler do) nor talk to Redis.
package store
