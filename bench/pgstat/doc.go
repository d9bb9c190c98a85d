// Package pgstat watches PostgreSQL while the bench runs: it samples pg_stat_activity to tell
// what the backends of one database spend their time on (running, waiting on a named wait
// event, or idle waiting for their client) and reads the CPU time of those backends, and of the
// server's background processes, from /proc. It needs the bench to run on the database's
// machine.
package pgstat
