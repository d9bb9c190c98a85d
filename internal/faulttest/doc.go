// Package faulttest breaks a running Pulse on purpose and checks that nothing is lost: Redis
// flushed, the stream source's consumer group destroyed, a deliver function killed mid-send,
// the webhook receiver down for a while, cron ticks missed. Each test runs every function as
// its own process (internal/pipelinetest) with at least 500 notifications in flight, and checks
// that every one reaches a terminal state and that webhook duplicates stay within the number
// of sends the fault interrupted.
//
// The package holds only tests.
package faulttest
