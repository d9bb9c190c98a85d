// Package ceserver owns what every Pulse function does the same way over HTTP: reading
// CloudEvents (binary, structured and batch) within a size limit, the one mapping from errors
// to status codes, health endpoints, and serving with explicit timeouts and a graceful,
// draining shutdown.
//
// It knows nothing of what a function does with the events it reads.
package ceserver
