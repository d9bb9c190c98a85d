// Package pipelinetest runs Pulse as it runs in a cluster, for end-to-end and fault-injection
// tests: ingest, both deliver functions, both stream sources and (when asked) cron, each a
// separate process built from this module, against a given database and Redis, delivering to
// a capture webhook receiver. Processes can be killed, stopped and restarted; the receiver can
// be failed, slowed, stopped and restarted; cron ticks can be paused.
package pipelinetest
