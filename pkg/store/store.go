package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrUnavailable wraps errors that mean PostgreSQL could not be reached or did not answer in
// time: the request may succeed if tried again. It reports Unavailable() true, which is how
// ceserver maps it to 503 without depending on the store.
var ErrUnavailable error = notification.UnavailableError("database unavailable")

// Store is Pulse's PostgreSQL store.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Open connects to the database cfg names. It does not wait for the database to answer, so a
// function starts even while PostgreSQL is down and answers 503 until it is back.
func Open(ctx context.Context, cfg config.Database) (*Store, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, fmt.Errorf("parse PULSE_DATABASE_URL: %w", errors.New("invalid connection string"))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pc.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	return New(pool, time.Now), nil
}

// New returns a store over pool; now is the clock every timestamp is taken from.
func New(pool *pgxpool.Pool, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, now: now}
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the connection pool, for health checks and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Now returns the store's clock reading.
func (s *Store) Now() time.Time { return s.now() }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", unavailable(err))
	}
	return nil
}

// Migrate applies the embedded migrations that have not run yet, holding an advisory lock so
// that functions starting together do not race.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", unavailable(err))
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), "pulse_schema_version")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// unavailable marks connection failures and timeouts with ErrUnavailable, so callers can
// answer 503 and let the sender retry. Errors of the statement itself pass unchanged.
func unavailable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is a connection exception, 53 insufficient resources, 57P0x a shutdown.
		if !strings.HasPrefix(pgErr.Code, "08") && !strings.HasPrefix(pgErr.Code, "53") && !strings.HasPrefix(pgErr.Code, "57P0") {
			return err
		}
	} else if errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// OpenReady opens the database cfg names and, when cfg.Migrate is set, applies the migrations,
// retrying with backoff while PostgreSQL is unreachable: a function is not ready until its
// schema is. It gives up only when ctx ends.
func OpenReady(ctx context.Context, cfg config.Database, logger *slog.Logger) (*Store, error) {
	st, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !cfg.Migrate {
		return st, nil
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := st.Migrate(ctx)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, ErrUnavailable) {
			st.Close()
			return nil, err
		}
		logger.Warn("database not ready, retrying", "error", err, "wait", wait.String())
		select {
		case <-ctx.Done():
			st.Close()
			return nil, fmt.Errorf("open database: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}
