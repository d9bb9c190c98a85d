package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where and with what a bench ran.
type Machine struct {
	Cores    int     `json:"cores"`
	MemoryGB float64 `json:"memory_gb"`
	CPU      string  `json:"cpu"`
	Kernel   string  `json:"kernel"`
	// LoadAverage is the 1-minute load average when the bench started: other work on the
	// machine shows here.
	LoadAverage string            `json:"load_average"`
	Go          string            `json:"go"`
	Postgres    string            `json:"postgres"`
	PGSettings  map[string]string `json:"postgres_settings"`
	Redis       string            `json:"redis"`
	Python      string            `json:"python"`
	Celery      string            `json:"celery"`
	Commit      string            `json:"commit"`
	// BinaryMB are the programs' sizes as ko builds them (-trimpath -ldflags=-s -w).
	BinaryMB map[string]float64 `json:"binary_mb"`
}

// pgSettings are the PostgreSQL settings that bear on the figures.
var pgSettings = []string{"synchronous_commit", "fsync", "wal_sync_method", "commit_delay", "shared_buffers",
	"max_connections", "wal_level", "max_wal_size", "checkpoint_timeout"}

func (h *Harness) machine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), PGSettings: map[string]string{}, BinaryMB: h.binarySizes()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				m.MemoryGB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAverage = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	_ = h.admin.QueryRow(ctx, "select version()").Scan(&m.Postgres)
	for _, s := range pgSettings {
		var v string
		if err := h.admin.QueryRow(ctx, "select current_setting($1)", s).Scan(&v); err == nil {
			m.PGSettings[s] = v
		}
	}
	if info, err := h.rdb.Info(ctx, "server").Result(); err == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	if out, err := exec.CommandContext(ctx, h.opts.Python, "-c",
		"import sys, celery, kombu; print(sys.version.split()[0], celery.__version__, kombu.__version__)").Output(); err == nil {
		f := strings.Fields(string(out))
		if len(f) == 3 {
			m.Python, m.Celery = f[0], "celery "+f[1]+", kombu "+f[2]
		}
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", h.root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "-C", h.root, "status", "--porcelain").Output(); err == nil && len(st) > 0 {
			m.Commit += " with uncommitted changes"
		}
	}
	return m
}
