package privateserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Redis is a redis-server process of the caller's own. It keeps nothing on disk: a restart
// starts empty.
type Redis struct {
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartRedis starts a redis-server on a free 127.0.0.1 port in a temporary directory and
// waits until it answers PING. Close stops it and removes the directory.
func StartRedis(ctx context.Context) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: redis-server: %v", ErrNotInstalled, err)
	}
	dir, err := os.MkdirTemp("", "pulseredis")
	if err != nil {
		return nil, fmt.Errorf("create private Redis directory: %w", err)
	}
	s := &Redis{bin: bin, dir: dir}
	if s.port, err = onFreePort(func(port int) error { s.port = port; return s.Start(ctx) }); err != nil {
		s.Close()
		return nil, fmt.Errorf("start private Redis: %w", err)
	}
	return s, nil
}

// URL returns the server's URL, database 0.
func (s *Redis) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// Addr returns the server's host:port.
func (s *Redis) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server and waits for it to exit. Stopping a stopped server does nothing.
func (s *Redis) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Close stops the server and removes its directory.
func (s *Redis) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// Start starts the stopped server again on the same port, empty, and waits until it answers.
func (s *Redis) Start(ctx context.Context) error {
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

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
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
func (s *Redis) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}
