// Package function owns how a Pulse process starts and ends: every function's main, and the
// stream source's, is one call to Main with the process's name and its run func. Main reads
// the configuration, builds the JSON logger (go-redis's lines included), runs until SIGTERM or
// SIGINT and turns the outcome into the exit code. OpenDatastores opens the PostgreSQL store
// and the Redis client the way every function that uses both does.
//
// It knows nothing of what a function does; that lives in the package each run func comes
// from (ingest, delivery, scheduler, metrics, streamsource).
package function
