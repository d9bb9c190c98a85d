// Package observe owns what Pulse tells its operators in logs: the JSON logger every function
// builds in main, and the version it reports. The delivery counters and latency histogram the
// deliver functions accumulate in Redis live in pkg/metrics/recorder, beside the metrics
// function that exports them.
package observe
