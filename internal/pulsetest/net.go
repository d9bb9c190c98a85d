package pulsetest

import (
	"net"
	"strconv"
	"testing"

	"github.com/pulse-knative/pulse/internal/privateserver"
)

// Listen returns a TCP listener on a free 127.0.0.1 port, closed when the test ends if the
// server it is given has not closed it already.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago: for a
// process that binds it itself, or for an address that refuses connections. Another process
// may take it in between; a test that cannot live with that retries.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := privateserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FreeAddr is FreePort as a host:port address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
