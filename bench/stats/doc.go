// Package stats holds the arithmetic of the bench's figures: latency percentiles of one run
// and the median, minimum and maximum of a figure over a scenario's repetitions.
package stats
