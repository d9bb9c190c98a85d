// Package pulsetest gives tests isolated access to real datastores: a PostgreSQL schema of
// their own on the shared server (TEST_DATABASE_URL), a Redis key prefix of their own on the
// shared server (TEST_REDIS_URL), and private server instances for tests that flush, stop or
// restart a datastore.
//
// Without the variables a test is skipped locally; with CI=true it fails instead.
package pulsetest
