// Package observe owns what Pulse tells its operators: the JSON logger every function builds
// in main, and the delivery counters and latency histogram the deliver functions accumulate in
// Redis for the metrics function to export.
package observe
