// Package pipelinetest runs Pulse as it runs in a cluster, for end-to-end and fault-injection
// tests: ingest, the deliver functions (several deliver-high processes when asked), their
// stream sources and (when asked) cron, each a separate process built from this module,
// against a given database and Redis, delivering to a capture webhook receiver and, when
// asked, to the email, SMS and push captures `pulse dev` runs. Processes can be killed,
// stopped and restarted; the receiver can be failed, slowed, stopped and restarted; cron
// ticks can be paused.
package pipelinetest
