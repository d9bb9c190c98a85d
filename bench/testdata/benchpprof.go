// This file is not part of any package in the repository. The bench adds it to each function's
// main package at build time (go build -overlay), so that the function it measures is the
// repository's own, with only this on the side: when PULSE_BENCH_PPROF_ADDR is set, a second
// listener serving net/http/pprof plus two endpoints that bracket a measured window.
//
//	POST /bench/profile/start   start a CPU profile and turn on block profiling
//	POST /bench/profile/stop    stop both; answers the CPU profile (pprof format)
//	GET  /debug/pprof/block     the block profile since start (take it after stop)
//
// The functions serve their own handlers on their own mux and port, so nothing here reaches
// them. Start-up time and binary size are measured on builds without this file.

package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	runtimepprof "runtime/pprof"
	"sync"
)

func init() {
	addr := os.Getenv("PULSE_BENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic("bench pprof listener: " + err.Error())
	}
	var (
		mu  sync.Mutex
		buf *bytes.Buffer
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("POST /bench/profile/start", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if buf != nil {
			http.Error(w, "already profiling", http.StatusConflict)
			return
		}
		buf = &bytes.Buffer{}
		if err := runtimepprof.StartCPUProfile(buf); err != nil {
			buf = nil
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// One sample per 10 µs spent blocked: cheap enough to leave on for a run.
		runtime.SetBlockProfileRate(10_000)
		runtime.SetMutexProfileFraction(100)
	})
	mux.HandleFunc("POST /bench/profile/stop", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if buf == nil {
			http.Error(w, "not profiling", http.StatusConflict)
			return
		}
		runtimepprof.StopCPUProfile()
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(buf.Bytes())
		buf = nil
	})
	go func() { _ = http.Serve(ln, mux) }()
}
