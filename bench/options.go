package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options configures a bench run. Every field has a flag; -quick changes the defaults of the
// sizes to a run of a couple of minutes.
type Options struct {
	// DatabaseURL, when set, names a PostgreSQL server and database to measure on instead of
	// the private cluster the bench starts (initdb, stock settings); the database is created
	// when missing, and each run works in a schema of its own, dropped afterwards. A server
	// shared with other work, or configured for tests (autovacuum off), is not what production
	// runs, so this is an explicit opt-in. It may hold a password, so the report shows it
	// redacted.
	DatabaseURL string `json:"-"`
	// RedisURL, when set, names a Redis server to use instead of the private redis-server the
	// bench starts; each run's keys share a prefix, deleted afterwards.
	RedisURL string `json:"-"`
	// N is the number of notifications of each ingest and end-to-end run; DrainN of each
	// drain run (old stack and Pulse's deliver path).
	N, DrainN int
	// Reps is how many times each scenario runs; repetitions are interleaved.
	Reps int
	// Quick marks a short run, and the report says so.
	Quick bool
	// Only runs the scenarios whose names start with one of these prefixes (all when empty).
	Only []string
	// Out is where REPORT.md and results.json are written; Profiles where the pprof files go.
	// Empty means bench/ and bench/profiles/ in the module.
	Out, Profiles string
	// ProfileRep is the repetition during which the functions are profiled (0: none).
	ProfileRep int

	// IngestConcurrency are the concurrencies of the single-event ingest runs.
	IngestConcurrency []int
	// PacedRate is the request rate of the open-loop latency run (0 skips it).
	PacedRate float64
	// BatchSizes are the batch sizes of the batch ingest runs; BatchConcurrency how many batch
	// requests are in flight.
	BatchSizes       []int
	BatchConcurrency int
	// E2EConcurrency is the load generator's concurrency in the end-to-end runs;
	// E2EStreamConcurrency the stream source's (PULSE_STREAM_CONCURRENCY) there.
	E2EConcurrency, E2EStreamConcurrency int
	// SinkDelays are the webhook sink's answer delays of the end-to-end and drain runs.
	SinkDelays []time.Duration
	// LoadPoints are the end-to-end load curve's offered rates, in percent of the flood
	// throughput (e2e-sink-0ms's median so far in the run); LoadDuration how long each point
	// sends. LoadBase is the 100 % rate when e2e-sink-0ms is not in the run (0: the curve and
	// the soak are not run then).
	LoadPoints   []int
	LoadDuration time.Duration
	LoadBase     float64
	// Soak is how long the soak runs at SoakPercent of the flood throughput, after every
	// repetition (0: no soak); SoakSample how often it samples; SoakRetention is purge's
	// retention in the soak (0: defaultSoakRetention); SoakHousekeeping how often purge and
	// trim run during it (0: config/'s schedules).
	Soak, SoakSample, SoakRetention, SoakHousekeeping time.Duration
	// DrainConcurrency is the concurrency of the Celery worker (prefork processes) and of
	// Pulse's stream source in the drain runs.
	DrainConcurrency int
	// Python runs the Celery worker; it must have Debian's python3-celery.
	Python string
	// Install lets the bench install the old stack's packages with apt-get when it runs as
	// root and they are missing.
	Install bool
	// ScrapeRows are the table sizes the metrics function is scraped at (none: skip).
	ScrapeRows []int
	// Scrapes is how many scrapes each scrape run times.
	Scrapes int
	// History is the number of finished notifications in the table before each ingest,
	// end-to-end and drain run starts, with statistics taken (0: an empty table).
	History int
	// Settings are PULSE_ variables given to every Pulse process of every run, over the
	// bench's defaults but under what a scenario sets itself (such as the drain runs' stream
	// concurrency), so that a setting can be measured against the defaults.
	Settings map[string]string
	// LogLevel is the functions' PULSE_LOG_LEVEL.
	LogLevel string
	// Timeout bounds one run of one scenario.
	Timeout time.Duration
	// Render, when set, names a results.json to write REPORT.md from, without running.
	Render string `json:"-"`
}

// defaultOptions are the options of a full run.
func defaultOptions() Options {
	return Options{
		N:                 20000,
		DrainN:            5000,
		Reps:              3,
		ProfileRep:        -1, // the last
		IngestConcurrency: []int{8, 64},
		PacedRate:         5000,
		BatchSizes:        []int{100, 1000},
		BatchConcurrency:  4,
		History:           100_000,
		E2EConcurrency:    64,
		// One deliver pod's worth: its containerConcurrency in config/.
		E2EStreamConcurrency: 100,
		SinkDelays:           []time.Duration{0, 10 * time.Millisecond},
		DrainConcurrency:     8,
		LoadPoints:           []int{25, 50, 75, 90},
		LoadDuration:         30 * time.Second,
		Soak:                 time.Hour,
		SoakSample:           time.Minute,
		Python:               "/usr/bin/python3",
		Install:              true,
		ScrapeRows:           []int{1_000_000, 10_000_000},
		Scrapes:              20,
		LogLevel:             "info",
		Timeout:              5 * time.Minute,
	}
}

// parseFlags reads the command line.
func parseFlags(args []string) (Options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [flags]\n\nMeasures Pulse beside its baselines and writes bench/REPORT.md and bench/results.json.\n\n")
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "a short run: N=2000, drain N=1000, scrape at 100k rows (sizes given as flags still win)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "measure on this PostgreSQL database (created when missing) instead of a private cluster with stock settings: not production-like")
	fs.StringVar(&o.RedisURL, "redis-url", "", "use this Redis server instead of a private redis-server")
	fs.IntVar(&o.N, "n", o.N, "notifications per ingest and end-to-end run")
	fs.IntVar(&o.DrainN, "drain-n", o.DrainN, "notifications per drain run (Celery and Pulse deliver)")
	fs.IntVar(&o.Reps, "reps", o.Reps, "repetitions of each scenario, interleaved")
	only := fs.String("only", "", "comma-separated scenario name prefixes to run (e.g. ingest,naive,startup)")
	fs.StringVar(&o.Out, "out", o.Out, "directory for REPORT.md and results.json (default: bench/ in the module)")
	fs.StringVar(&o.Profiles, "profiles", o.Profiles, "directory for pprof files (default: bench/profiles/ in the module)")
	fs.IntVar(&o.ProfileRep, "profile-rep", o.ProfileRep, "repetition to profile the functions in (-1: the last, 0: none)")
	ingestC := fs.String("ingest-concurrency", joinInts(o.IngestConcurrency), "concurrencies of single-event ingest")
	fs.Float64Var(&o.PacedRate, "paced-rate", o.PacedRate, "requests/s of the open-loop ingest latency run (0: skip)")
	batches := fs.String("batch-sizes", joinInts(o.BatchSizes), "batch sizes of batch ingest")
	fs.IntVar(&o.BatchConcurrency, "batch-concurrency", o.BatchConcurrency, "batch requests in flight")
	fs.IntVar(&o.History, "history", o.History, "finished notifications in the table before each ingest, end-to-end and drain run")
	fs.IntVar(&o.E2EConcurrency, "e2e-concurrency", o.E2EConcurrency, "load generator concurrency in end-to-end runs")
	fs.IntVar(&o.E2EStreamConcurrency, "e2e-stream-concurrency", o.E2EStreamConcurrency, "stream source concurrency in end-to-end runs (a deliver pod's containerConcurrency)")
	delays := fs.String("sink-delays", "0s,10ms", "webhook sink answer delays")
	fs.IntVar(&o.DrainConcurrency, "drain-concurrency", o.DrainConcurrency, "Celery prefork processes and Pulse stream-source concurrency in drain runs")
	loadPoints := fs.String("load-points", joinInts(o.LoadPoints), "offered rates of the end-to-end load curve, in percent of e2e-sink-0ms's throughput")
	fs.DurationVar(&o.LoadDuration, "load-duration", o.LoadDuration, "how long each load-curve point sends (10s with -quick)")
	fs.Float64Var(&o.LoadBase, "load-base", 0, "the flood rate (delivered/s) the load curve and soak take percentages of when e2e-sink-0ms is not run")
	fs.DurationVar(&o.Soak, "soak", o.Soak, "soak duration at 50% of the flood rate, after the repetitions (0: none; -quick: none unless given)")
	fs.DurationVar(&o.SoakSample, "soak-sample", o.SoakSample, "soak sampling interval (10s when the soak is shorter than 10m)")
	fs.DurationVar(&o.SoakRetention, "soak-retention", 0, "PULSE_RETENTION of the soak's cron function, so that purge deletes during it (0: 4 minutes, or a sixth of a shorter soak)")
	fs.DurationVar(&o.SoakHousekeeping, "soak-housekeeping", 0, "how often purge and trim run in the soak (0: as config/40-cron-schedules.yaml says)")
	fs.StringVar(&o.Python, "python", o.Python, "Python with Debian's python3-celery")
	fs.BoolVar(&o.Install, "install", o.Install, "install python3-celery and friends with apt-get when missing (as root)")
	rows := fs.String("scrape-rows", joinInts(o.ScrapeRows), "table sizes to scrape the metrics function at (empty: skip)")
	fs.IntVar(&o.Scrapes, "scrapes", o.Scrapes, "scrapes timed per scrape run")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "the functions' PULSE_LOG_LEVEL")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on one run of one scenario")
	fs.StringVar(&o.Render, "render", "", "only write REPORT.md again from this results.json (no run)")
	fs.Func("set", "a `PULSE_NAME=value` every Pulse process gets (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || !strings.HasPrefix(k, "PULSE_") {
			return fmt.Errorf("want PULSE_NAME=value, got %q", v)
		}
		if o.Settings == nil {
			o.Settings = map[string]string{}
		}
		o.Settings[k] = val
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		o.Quick = true
		if !set["n"] {
			o.N = 2000
		}
		if !set["drain-n"] {
			o.DrainN = 1000
		}
		if !set["history"] {
			o.History = 10_000
		}
		if !set["scrape-rows"] {
			*rows = "100000"
		}
		if !set["scrapes"] {
			o.Scrapes = 5
		}
		if !set["load-duration"] {
			o.LoadDuration = 10 * time.Second
		}
		if !set["soak"] {
			o.Soak = 0
		}
	}
	if !set["soak-sample"] && o.Soak < 10*time.Minute {
		o.SoakSample = 10 * time.Second
	}
	var err error
	if o.IngestConcurrency, err = parseInts(*ingestC); err != nil {
		return o, fmt.Errorf("-ingest-concurrency: %w", err)
	}
	if o.BatchSizes, err = parseInts(*batches); err != nil {
		return o, fmt.Errorf("-batch-sizes: %w", err)
	}
	if o.ScrapeRows, err = parseInts(*rows); err != nil {
		return o, fmt.Errorf("-scrape-rows: %w", err)
	}
	o.SinkDelays = nil
	for _, d := range splitList(*delays) {
		v, err := time.ParseDuration(d)
		if err != nil {
			return o, fmt.Errorf("-sink-delays: %w", err)
		}
		o.SinkDelays = append(o.SinkDelays, v)
	}
	if o.LoadPoints, err = parseInts(*loadPoints); err != nil {
		return o, fmt.Errorf("-load-points: %w", err)
	}
	if o.LoadDuration <= 0 || o.LoadBase < 0 || o.Soak < 0 || o.SoakSample <= 0 || o.SoakHousekeeping < 0 || o.SoakRetention < 0 {
		return o, fmt.Errorf("-load-duration and -soak-sample must be positive, -load-base, -soak, -soak-retention and -soak-housekeeping not negative")
	}
	o.Only = splitList(*only)
	if o.N < 1 || o.DrainN < 1 || o.Reps < 1 || o.BatchConcurrency < 1 || o.E2EConcurrency < 1 || o.E2EStreamConcurrency < 1 || o.DrainConcurrency < 1 || o.History < 0 {
		return o, fmt.Errorf("-n, -drain-n, -reps and the concurrencies must be positive")
	}
	if o.ProfileRep < 0 {
		o.ProfileRep = o.Reps
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		v, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// selected reports whether the scenario named name is to run.
func (o Options) selected(name string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, p := range o.Only {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
