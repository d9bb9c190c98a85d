package privateserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrNotInstalled means the server's programs are not on this machine (`make datastores`
// installs them).
var ErrNotInstalled = errors.New("server programs not installed")

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// startAttempts is how many free ports a server is tried on: another process may take the
// port between FreePort closing its listener and the server binding it.
const startAttempts = 3

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago. It picks
// from below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768 and up by
// default): a port from that range can be handed to an outgoing connection, or to another
// test's ":0" listener, between this check and the caller's bind, and the caller's server
// then fails with "address already in use" while something else answers on its port.
func FreePort() (int, error) {
	for range freePortTries {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// The range FreePort picks from, below the ephemeral ports, and how many ports it tries there
// before it takes one the kernel chooses.
const (
	freePortLow   = 20000
	freePortHigh  = 32768
	freePortTries = 50
)

// onFreePort calls start with free ports until one works, startAttempts times at most.
func onFreePort(start func(port int) error) (int, error) {
	var err error
	for range startAttempts {
		var port int
		if port, err = FreePort(); err != nil {
			return 0, err
		}
		if err = start(port); err == nil {
			return port, nil
		}
	}
	return 0, err
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
