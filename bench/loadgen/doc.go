// Package loadgen sends notification requests to ingest over HTTP/1.1 keep-alive connections:
// binary-mode CloudEvents one per request, closed-loop at a fixed concurrency or open-loop at
// a fixed rate, or application/cloudevents-batch+json batches. It records each request's
// latency and counts what ingest answered. It is written to cost little CPU per request, so
// that on a small machine the load generator does not take the cores it measures.
package loadgen
