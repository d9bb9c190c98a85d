// Package recorder owns the Redis side of the delivery metrics: the deliver functions count
// attempts and accumulate the latency histogram in Redis through a Recorder, where the counts
// outlive functions that scale to zero, and pkg/metrics reads the same hashes at scrape time.
//
// It is its own package so the deliver functions write metrics without linking the Prometheus
// client that pkg/metrics exports them with.
package recorder
