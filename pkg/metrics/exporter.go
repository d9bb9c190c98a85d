package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Path is where the metrics function serves the metrics.
const Path = "/metrics"

// namespace prefixes every metric Pulse exports.
const namespace = "pulse"

// collector is one small part of a scrape: it reads one thing and reports its metrics.
type collector interface {
	// Describe sends the descriptor of every metric Update may send.
	Describe(ch chan<- *prometheus.Desc)
	// Update reads what it reports and sends its metrics to ch, giving up when ctx is done.
	// An error means the metrics it sent may be incomplete.
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// collectorFunc is a collector of the metrics of one descriptor, read by a function.
type collectorFunc struct {
	desc   *prometheus.Desc
	update func(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Describe implements collector.
func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Update implements collector.
func (c collectorFunc) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return c.update(ctx, ch)
}

// Config configures an Exporter.
type Config struct {
	// Store is the PostgreSQL store the status counts, the failure rate and the past-due count
	// are read from.
	Store *store.Store
	// Redis holds the streams, the dead-letter streams, the attempt counters and the latency
	// histograms. Its client should honour context deadlines (ContextTimeoutEnabled), so that
	// a collector that runs out of time stops waiting for Redis.
	Redis redis.Cmdable
	// Keys names the Redis keys.
	Keys queue.Keys
	// Group is the stream source's consumer group (PULSE_STREAM_GROUP).
	Group string
	// ScrapeTimeout bounds one scrape; Prometheus's X-Prometheus-Scrape-Timeout-Seconds
	// header shortens it. Zero means 5s.
	ScrapeTimeout time.Duration
	// FailureWindow is the window pulse_notification_failure_rate covers. Zero means 15m.
	FailureWindow time.Duration
	// PastDueAfter is how long a notification may be due and not released before it counts
	// as past due.
	PastDueAfter time.Duration
	// StatusCacheFor is how long the status page shows what it read before reading again,
	// however many open it. Zero means 5s.
	StatusCacheFor time.Duration
	// Now is the clock ages and windows are measured with; nil means time.Now. How long a
	// collector took is always measured with the real clock.
	Now func() time.Time
	// Logger receives the collectors' errors.
	Logger *slog.Logger
}

// Exporter computes Pulse's metrics at scrape time and serves them over HTTP.
type Exporter struct {
	collectors []namedCollector
	timeout    time.Duration
	logger     *slog.Logger
	// process holds the Go runtime and process collectors, which need no context.
	process *prometheus.Registry
	// page serves the status pages.
	page *statusPage
}

type namedCollector struct {
	name string
	collector
}

// NewExporter returns an exporter reading what cfg names.
func NewExporter(cfg Config) *Exporter {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = 5 * time.Second
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = 15 * time.Minute
	}
	process := prometheus.NewRegistry()
	process.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Exporter{
		collectors: []namedCollector{
			{"queue", newQueueCollector(cfg.Redis, cfg.Keys, cfg.Group, now)},
			{"dead_letter", newDeadLetterCollector(cfg.Redis, cfg.Keys)},
			{"attempts", newAttemptsCollector(cfg.Redis, cfg.Keys)},
			{"latency", newLatencyCollector(cfg.Redis, cfg.Keys)},
			{"provider", newProviderCollector(cfg.Redis, cfg.Keys, now)},
			{"status", newStatusCollector(cfg.Store)},
			{"failure_rate", newFailureRateCollector(cfg.Store, cfg.FailureWindow, now)},
			{"past_due", newPastDueCollector(cfg.Store, cfg.PastDueAfter, now)},
			{"rollup", newRollupCollector(cfg.Store)},
		},
		timeout: cfg.ScrapeTimeout,
		logger:  logger,
		process: process,
		page:    newStatusPage(cfg, now, logger),
	}
}

// scrapeTimeoutHeader is the header in which Prometheus sends its scrape timeout, in seconds.
const scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

var _ http.Handler = (*Exporter)(nil)

// ServeHTTP serves one scrape: every collector runs under the scrape timeout, and the answer is
// written even when some of them fail or run out of time.
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), e.scrapeTimeout(r))
	defer cancel()
	// A registry per scrape, so that its collectors run under this request's context.
	reg := prometheus.NewRegistry()
	reg.MustRegister(&scrape{exporter: e, ctx: ctx})
	promhttp.HandlerFor(prometheus.Gatherers{e.process, reg}, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(e.logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP(w, r)
}

// scrapeTimeout is the configured timeout, or less when Prometheus gives up sooner: then a tenth
// of its timeout is left to encode and send the answer.
func (e *Exporter) scrapeTimeout(r *http.Request) time.Duration {
	timeout := e.timeout
	if v, err := strconv.ParseFloat(r.Header.Get(scrapeTimeoutHeader), 64); err == nil && v > 0 {
		timeout = min(timeout, time.Duration(v*0.9*float64(time.Second)))
	}
	return timeout
}

// scrape is the prometheus.Collector of one scrape.
type scrape struct {
	exporter *Exporter
	ctx      context.Context
}

var _ prometheus.Collector = (*scrape)(nil)

// Describe sends every descriptor of every collector, so the registry checks what they send.
func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	e := s.exporter
	ch <- collectorSuccessDesc
	ch <- collectorDurationDesc
	for _, c := range e.collectors {
		c.Describe(ch)
	}
}

// updated is what one collector came to.
type updated struct {
	index   int
	metrics []prometheus.Metric
	err     error
	took    time.Duration
}

// Collect runs every collector at once and sends what each reported, with its success and
// duration. A collector still running when the scrape's context ends counts as failed and its
// metrics are left out; it stops on its own, since its context has ended too.
func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	e := s.exporter
	start := time.Now()
	results := make(chan updated, len(e.collectors))
	for i, c := range e.collectors {
		go func() {
			began := time.Now()
			// Each collector sends to a buffer of its own, so one that is abandoned never
			// sends to ch after Collect has returned.
			buf := make(chan prometheus.Metric)
			collected := make(chan []prometheus.Metric)
			go func() {
				var ms []prometheus.Metric
				for m := range buf {
					ms = append(ms, m)
				}
				collected <- ms
			}()
			err := c.Update(s.ctx, buf)
			close(buf)
			results <- updated{index: i, metrics: <-collected, err: err, took: time.Since(began)}
		}()
	}

	done := make([]bool, len(e.collectors))
	report := func(u updated) {
		done[u.index] = true
		name := e.collectors[u.index].name
		for _, m := range u.metrics {
			ch <- m
		}
		ok := 1.0
		if u.err != nil {
			ok = 0
			e.logger.Warn("collector failed", "collector", name, "error", u.err.Error())
		}
		ch <- prometheus.MustNewConstMetric(collectorSuccessDesc, prometheus.GaugeValue, ok, name)
		ch <- prometheus.MustNewConstMetric(collectorDurationDesc, prometheus.GaugeValue, u.took.Seconds(), name)
	}
	for range e.collectors {
		select {
		case u := <-results:
			report(u)
		case <-s.ctx.Done():
			// Out of time: report the collectors that finished meanwhile, fail the others.
			for drained := false; !drained; {
				select {
				case u := <-results:
					report(u)
				default:
					drained = true
				}
			}
			took := time.Since(start)
			for i, c := range e.collectors {
				if done[i] {
					continue
				}
				e.logger.Warn("collector ran out of time", "collector", c.name, "took", took.String())
				ch <- prometheus.MustNewConstMetric(collectorSuccessDesc, prometheus.GaugeValue, 0, c.name)
				ch <- prometheus.MustNewConstMetric(collectorDurationDesc, prometheus.GaugeValue, took.Seconds(), c.name)
			}
			return
		}
	}
}

// Handler returns the metrics function's handler: the exporter at Path, the status page at
// StatusPath and each notification's timeline under TimelinePath.
func Handler(e *Exporter) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, e)
	mux.HandleFunc("GET "+StatusPath+"{$}", e.page.serveOverview)
	mux.HandleFunc("GET "+TimelinePath+"{id}", e.page.serveTimeline)
	return mux
}
