// Package queue owns Pulse's Redis keys and streams: it builds every key from the configured
// prefix, appends dispatch entries (XADD, pipelined for batches), holds the consumer-group
// helpers the stream source uses and the script cron trims acknowledged entries with. Every
// Redis stream script lives here.
//
// It does not decide what to enqueue or when; PostgreSQL is the truth and the stream is only a
// way to hand work to the deliver functions quickly.
package queue
