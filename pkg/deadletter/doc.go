// Package deadletter is the operator's view of the dead-letter streams: it lists their entries
// with the status of the notification each refers to, read from PostgreSQL, and redrives them
// to their priority's stream. The stream scripts themselves are pkg/queue's; the stream source
// (pkg/streamsource) puts entries there, and cron's trim job bounds them.
package deadletter
