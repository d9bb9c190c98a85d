// Package profile reads the pprof profiles the bench takes of each function under load and
// sums them up for the report: the functions that use the most CPU themselves and with their
// callees, how the samples fall into areas (pgx, go-redis, JSON, net/http, GC, syscalls...),
// and, for block profiles, the first frame outside the runtime where goroutines wait. It reads
// a profile through `go tool pprof -traces`, so it needs the Go toolchain and nothing else.
package profile
