package pulsetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds how long a private server may take to become ready.
const startTimeout = 60 * time.Second

// startAttempts is how many free ports a private server is tried on: another process may take
// the port between freePort closing its listener and the server binding it.
const startAttempts = 3

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last lines of a server's log file, to explain why it did not start.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// RedisServer is a redis-server process of one test's own, for tests that flush, stop or
// restart Redis. It keeps nothing on disk: a restart starts empty.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartRedis starts a redis-server on a free 127.0.0.1 port in a temporary directory, waits
// until it answers PING, and stops it when the test ends. Without redis-server installed the
// test is skipped, or failed when CI=true.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		skipOrFail(t, "redis-server not found (make datastores installs it): %v", err)
	}
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	for range startAttempts {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start private Redis: %v", err)
	return nil
}

// URL returns the server's URL, database 0.
func (s *RedisServer) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// Addr returns the server's host:port.
func (s *RedisServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server and waits for it to exit. Stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Start starts the stopped server again on the same port, empty, and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart private Redis: %v", err)
	}
}

func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on port %d is already running", s.port)
	}
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", logFile)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := pingRedis(ctx, s.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redis-server on port %d exited:\n%s", s.port, logTail(logFile))
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("redis-server on port %d did not answer PING: %v\n%s",
				s.port, err, logTail(logFile))
		case <-tick.C:
		}
	}
}

// pingRedis sends one PING on a connection of its own. A go-redis client would do, but its pool
// backs off after failed dials, and a server that is starting fails many.
func pingRedis(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply := make([]byte, len("+PONG\r\n"))
	if _, err := io.ReadFull(conn, reply); err != nil {
		return err
	}
	if string(reply) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// kill kills the running server, if any, and waits for it to exit. s.mu must be held.
func (s *RedisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// privatePostgresUser is the superuser of a private PostgreSQL server, set with initdb -U so
// that it does not depend on which OS user ran initdb.
const privatePostgresUser = "postgres"

// privatePostgresDatabase is the database created in a private PostgreSQL server.
const privatePostgresDatabase = "pulse"

// PostgresServer is a PostgreSQL server of one test's own, for tests that stop or restart
// PostgreSQL. Its data survives Stop and Start.
type PostgresServer struct {
	t     testing.TB
	bin   string              // directory holding initdb, pg_ctl and postgres
	dir   string              // temporary directory: the socket, the log and data/
	owner *syscall.Credential // the OS user the server runs as; nil for the current user
	port  int

	mu      sync.Mutex
	running bool
}

// StartPostgres initializes a PostgreSQL data directory in a temporary directory, starts a
// server on a free 127.0.0.1 port with trust authentication, creates a database and removes it
// all when the test ends. PostgreSQL refuses to run as root, so as root the server runs as the
// postgres OS user. Without the server binaries the test is skipped, or failed when CI=true.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		skipOrFail(t, "%v (make datastores installs it)", err)
	}
	owner, err := postgresOwner()
	if err != nil {
		skipOrFail(t, "%v", err)
	}

	// Not t.TempDir: its parent is private to the current user, which the server may not be,
	// and its long name could overflow the limit on a unix socket's path.
	dir, err := os.MkdirTemp("", "pulsepg")
	if err != nil {
		t.Fatalf("create private PostgreSQL directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if owner != nil {
		if err := os.Chown(dir, int(owner.Uid), int(owner.Gid)); err != nil {
			t.Fatalf("hand %s to the postgres OS user: %v", dir, err)
		}
	}
	s := &PostgresServer{t: t, bin: bin, dir: dir, owner: owner}

	if out, err := s.run("initdb", "-D", s.dataDir(), "-U", privatePostgresUser,
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\n", dir)
	if err := appendFile(filepath.Join(s.dataDir(), "postgresql.conf"), conf); err != nil {
		t.Fatalf("configure private PostgreSQL: %v", err)
	}

	t.Cleanup(s.Stop)
	for range startAttempts {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start private PostgreSQL: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		t.Fatalf("connect to private PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+privatePostgresDatabase); err != nil {
		t.Fatalf("create database %s: %v", privatePostgresDatabase, err)
	}
	return s
}

// URL returns the connection string of the server's database.
func (s *PostgresServer) URL() string {
	return s.url(privatePostgresDatabase)
}

func (s *PostgresServer) url(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable",
		privatePostgresUser, s.port, database)
}

// Stop stops the server at once, as a crash would (pg_ctl stop -m immediate): committed data
// is kept and recovered by Start. Stopping a stopped server does nothing.
func (s *PostgresServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	if out, err := s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate", "-w",
		"-t", strconv.Itoa(int(startTimeout.Seconds()))); err != nil {
		s.t.Errorf("stop private PostgreSQL: %v\n%s", err, out)
		return
	}
	s.running = false
}

// Start starts the stopped server again on the same port and waits until it accepts
// connections.
func (s *PostgresServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart private PostgreSQL: %v", err)
	}
}

func (s *PostgresServer) start() error {
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
		// A server that is still starting would outlive the test: stop it, if there is one.
		_, _ = s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate")
		return fmt.Errorf("pg_ctl start on port %d: %v\n%s\n%s", s.port, err, out, logTail(logFile))
	}
	s.running = true
	return nil
}

func (s *PostgresServer) dataDir() string { return filepath.Join(s.dir, "data") }

// run runs one of the server's programs as the server's OS user.
func (s *PostgresServer) run(program string, args ...string) ([]byte, error) {
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
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
}

// postgresOwner returns the credentials to run the server with: the postgres OS user's when
// running as root, which PostgreSQL refuses, and nil (the current user) otherwise.
func postgresOwner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no postgres OS user to run PostgreSQL as: %w", err)
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
