package function

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext returns a context cancelled at the first SIGTERM or SIGINT, so the process
// drains and stops within its shutdown budget. A second signal exits at once with status 1:
// an operator pressing Ctrl-C twice does not wait for the drain.
func SignalContext() context.Context {
	return signalContext(func() { os.Exit(1) })
}

// signalContext is SignalContext with what a second signal does.
func signalContext(again func()) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-c
		cancel()
		<-c
		again()
	}()
	return ctx
}
