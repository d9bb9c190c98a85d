package privateserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// postgresUser is the superuser of a private PostgreSQL server, set with initdb -U so that it
// does not depend on which OS user ran initdb.
const postgresUser = "postgres"

// PostgresConfig configures a private PostgreSQL server.
type PostgresConfig struct {
	// Settings are added to postgresql.conf after initdb's own, by name; nil leaves the
	// server as initdb configures it, apart from where it listens.
	Settings map[string]string
	// Database is created once the server is up; empty means "pulse".
	Database string
}

// Postgres is a PostgreSQL server of the caller's own. Its data survives Stop and Start.
type Postgres struct {
	bin      string              // directory holding initdb, pg_ctl and postgres
	dir      string              // temporary directory: the socket, the log and data/
	owner    *syscall.Credential // the OS user the server runs as; nil for the current user
	port     int
	database string

	mu      sync.Mutex
	running bool
}

// StartPostgres initializes a data directory in a temporary directory, starts a server on a
// free 127.0.0.1 port with trust authentication and creates cfg.Database. PostgreSQL refuses
// to run as root, so as root the server runs as the postgres OS user. Close stops it and
// removes the directory.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	owner, err := postgresOwner()
	if err != nil {
		return nil, err
	}
	// Not a directory below the caller's private ones: the server may run as another user,
	// and a long name could overflow the limit on a unix socket's path.
	dir, err := os.MkdirTemp("", "pulsepg")
	if err != nil {
		return nil, fmt.Errorf("create private PostgreSQL directory: %w", err)
	}
	s := &Postgres{bin: bin, dir: dir, owner: owner, database: cfg.Database}
	if s.database == "" {
		s.database = "pulse"
	}
	if err := s.init(ctx, cfg.Settings); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Postgres) init(ctx context.Context, settings map[string]string) error {
	if s.owner != nil {
		if err := os.Chown(s.dir, int(s.owner.Uid), int(s.owner.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres OS user: %w", s.dir, err)
		}
	}
	if out, err := s.run("initdb", "-D", s.dataDir(), "-U", postgresUser,
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n", s.dir)
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		conf += fmt.Sprintf("%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	if err := appendFile(filepath.Join(s.dataDir(), "postgresql.conf"), conf); err != nil {
		return fmt.Errorf("configure private PostgreSQL: %w", err)
	}
	var err error
	if s.port, err = onFreePort(func(port int) error { s.port = port; return s.Start() }); err != nil {
		return fmt.Errorf("start private PostgreSQL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return fmt.Errorf("connect to private PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.database}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", s.database, err)
	}
	return nil
}

// URL returns the connection string of the server's database, as its superuser.
func (s *Postgres) URL() string {
	return s.url(s.database)
}

func (s *Postgres) url(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", postgresUser, s.port, database)
}

// Stop stops the server at once, as a crash would (pg_ctl stop -m immediate): committed data
// is kept and recovered by Start. Stopping a stopped server does nothing.
func (s *Postgres) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if out, err := s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate", "-w",
		"-t", strconv.Itoa(int(startTimeout.Seconds()))); err != nil {
		return fmt.Errorf("stop private PostgreSQL: %w\n%s", err, out)
	}
	s.running = false
	return nil
}

// Close stops the server and removes its directory.
func (s *Postgres) Close() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// Start starts the stopped server again on the same port and waits until it accepts
// connections.
func (s *Postgres) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("PostgreSQL on port %d is already running", s.port)
	}
	logFile := filepath.Join(s.dir, "server.log")
	// -w waits until the server accepts connections, crash recovery included.
	if out, err := s.run("pg_ctl", "start", "-D", s.dataDir(), "-l", logFile,
		"-o", fmt.Sprintf("-p %d", s.port),
		"-w", "-t", strconv.Itoa(int(startTimeout.Seconds()))); err != nil {
		// A server that is still starting would outlive its caller: stop it, if there is one.
		_, _ = s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate")
		return fmt.Errorf("pg_ctl start on port %d: %v\n%s\n%s", s.port, err, out, logTail(logFile))
	}
	s.running = true
	return nil
}

func (s *Postgres) dataDir() string { return filepath.Join(s.dir, "data") }

// run runs one of the server's programs as the server's OS user.
func (s *Postgres) run(program string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, program), args...)
	cmd.Dir = s.dir
	if s.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.owner}
	}
	return cmd.CombinedOutput()
}

// postgresBinDir returns the directory holding initdb, pg_ctl and postgres: where pg_ctl on
// PATH really lives, or else the newest /usr/lib/postgresql/*/bin (Debian's layout, which does
// not put them on PATH).
func postgresBinDir() (string, error) {
	complete := func(dir string) bool {
		for _, program := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, program)); err != nil {
				return false
			}
		}
		return true
	}
	if path, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && complete(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if complete(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found", ErrNotInstalled)
}

// postgresOwner returns the credentials to run the server with: the postgres OS user's when
// running as root, which PostgreSQL refuses, and nil (the current user) otherwise.
func postgresOwner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root, and no postgres OS user to run PostgreSQL as: %v", ErrNotInstalled, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
