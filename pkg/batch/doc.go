// Package batch owns group commit: it gathers the calls that concurrent requests make into
// shared batches, so that one PostgreSQL transaction (and one WAL flush) serves many
// requests. With PostgreSQL commits as the bottleneck, this is what lets throughput grow with
// concurrency.
//
// A batch that fails because of one call's items (Batcher.Isolate) is run again in halves
// until that call is alone, so one caller's bad input never fails the others.
//
// It knows nothing of what a batch does; ingest and delivery give it their statements.
package batch
