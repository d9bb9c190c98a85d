package function

import (
	"syscall"
	"testing"
	"time"
)

// TestSignalContext sends the process SIGTERM twice: the first cancels the context, the
// second calls what stands in for exiting.
func TestSignalContext(t *testing.T) {
	again := make(chan struct{})
	ctx := signalContext(func() { close(again) })
	if err := ctx.Err(); err != nil {
		t.Fatalf("context done before any signal: %v", err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	select {
	case <-again:
		t.Fatal("one signal acted as two")
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again:
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not exit")
	}
}
