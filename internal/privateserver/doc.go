// Package privateserver starts PostgreSQL and Redis servers of a caller's own: each in a
// temporary directory, on a free 127.0.0.1 port, owned by the caller until Close. Tests use
// it (through internal/pulsetest) when they stop, flush or restart a datastore; the bench
// uses it to measure on a server configured as production runs it rather than on a shared
// one tuned for tests.
//
// It does not install the servers' programs: without them Start returns ErrNotInstalled.
package privateserver
