// Package batch owns group commit: it gathers the calls that concurrent requests make into
// shared batches, so that one PostgreSQL transaction (and one WAL flush) serves many
// requests. With PostgreSQL commits as the bottleneck, this is what lets throughput grow with
// concurrency.
//
// It knows nothing of what a batch does; ingest and delivery give it their statements.
package batch
