package pulsetest

import (
	"context"
	"errors"
	"testing"

	"github.com/pulse-knative/pulse/internal/privateserver"
)

// RedisServer is a redis-server process of one test's own, for tests that flush, stop or
// restart Redis. It keeps nothing on disk: a restart starts empty.
type RedisServer struct {
	*privateserver.Redis
	t testing.TB
}

// StartRedis starts a redis-server on a free 127.0.0.1 port in a temporary directory, waits
// until it answers PING, and stops it when the test ends. Without redis-server installed the
// test is skipped, or failed when CI=true.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	s, err := privateserver.StartRedis(context.Background())
	if errors.Is(err, privateserver.ErrNotInstalled) {
		skipOrFail(t, "%v (make datastores installs it)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &RedisServer{Redis: s, t: t}
}

// Start starts the stopped server again on the same port, empty, and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	if err := s.Redis.Start(context.Background()); err != nil {
		s.t.Fatalf("restart private Redis: %v", err)
	}
}

// PostgresServer is a PostgreSQL server of one test's own, for tests that stop or restart
// PostgreSQL. Its data survives Stop and Start.
type PostgresServer struct {
	s *privateserver.Postgres
	t testing.TB
}

// StartPostgres initializes a PostgreSQL data directory in a temporary directory, starts a
// server on a free 127.0.0.1 port with trust authentication (and fsync off: a test's data need
// not survive the machine), creates a database and removes it all when the test ends. As root
// the server runs as the postgres OS user. Without the server binaries the test is skipped,
// or failed when CI=true.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	s, err := privateserver.StartPostgres(context.Background(), privateserver.PostgresConfig{
		Settings: map[string]string{"fsync": "off"},
	})
	if errors.Is(err, privateserver.ErrNotInstalled) {
		skipOrFail(t, "%v (make datastores installs it)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close private PostgreSQL: %v", err)
		}
	})
	return &PostgresServer{s: s, t: t}
}

// URL returns the connection string of the server's database.
func (s *PostgresServer) URL() string { return s.s.URL() }

// Stop stops the server at once, as a crash would (pg_ctl stop -m immediate): committed data
// is kept and recovered by Start. Stopping a stopped server does nothing.
func (s *PostgresServer) Stop() {
	if err := s.s.Stop(); err != nil {
		s.t.Errorf("%v", err)
	}
}

// Start starts the stopped server again on the same port and waits until it accepts
// connections.
func (s *PostgresServer) Start() {
	s.t.Helper()
	if err := s.s.Start(); err != nil {
		s.t.Fatalf("restart private PostgreSQL: %v", err)
	}
}
