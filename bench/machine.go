package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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
	// PGNonDefault are the server's settings that are not PostgreSQL's built-in defaults, as
	// this run's connection sees them.
	PGNonDefault []PGSetting `json:"postgres_non_default_settings"`
	Redis        string      `json:"redis"`
	Python       string      `json:"python"`
	Celery       string      `json:"celery"`
	Commit       string      `json:"commit"`
	// BinaryMB are the programs' sizes as ko builds them (-trimpath -ldflags=-s -w).
	BinaryMB map[string]float64 `json:"binary_mb"`
}

// pgSettings are the PostgreSQL settings that bear on the figures.
var pgSettings = []string{"synchronous_commit", "fsync", "autovacuum", "wal_sync_method", "commit_delay", "shared_buffers",
	"max_connections", "wal_level", "max_wal_size", "checkpoint_timeout"}

// PGSetting is one PostgreSQL setting and where its value comes from (pg_settings.source:
// "configuration file", "command line", "client"...).
type PGSetting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// pgNonDefault reads every setting whose value is not the built-in default.
func (h *Harness) pgNonDefault(ctx context.Context) ([]PGSetting, error) {
	rows, err := h.admin.Query(ctx, `select name, current_setting(name), source from pg_settings
		where source not in ('default', 'override') order by name`)
	if err != nil {
		return nil, fmt.Errorf("read pg_settings: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[PGSetting])
}

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
	var err error
	if m.PGNonDefault, err = h.pgNonDefault(ctx); err != nil {
		h.logf("%v", err)
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
