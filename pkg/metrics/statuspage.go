package metrics

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Paths of the status page.
const (
	// StatusPath is the status page: queues, counts, failure rates and the latest failures.
	StatusPath = "/"
	// TimelinePath is the page of one notification's timeline; the id follows it.
	TimelinePath = "/notifications/"
)

const (
	// latestFailuresShown is how many failed notifications the status page lists.
	latestFailuresShown = 20
	// maxErrorRunes bounds an error text on the status pages. Errors are Pulse's own and never
	// quote a body; the bound keeps a provider's long answer from filling the page.
	maxErrorRunes = 300
	// refreshSeconds is how often the pages reload themselves.
	refreshSeconds = 10
)

//go:embed statuspage/*.html
var pageFiles embed.FS

// The status pages' templates, each with the layout they share.
var (
	overviewTemplate = parsePage("overview.html")
	timelineTemplate = parsePage("timeline.html")
	problemTemplate  = parsePage("problem.html")
)

func parsePage(name string) *template.Template {
	return template.Must(template.ParseFS(pageFiles, "statuspage/layout.html", "statuspage/"+name))
}

// statusPage serves the read-only status pages. The overview reads what a scrape reads, the
// way the collectors read it, plus one indexed page of failed notifications, and keeps what
// it read for cacheFor, so that any number of open tabs costs a scrape every few seconds at
// most.
type statusPage struct {
	store        *store.Store
	redis        redis.Cmdable
	queue        *queueCollector
	keys         queue.Keys
	window       time.Duration
	pastDueAfter time.Duration
	timeout      time.Duration
	cacheFor     time.Duration
	now          func() time.Time
	logger       *slog.Logger

	// mu is held while an overview is read, so that requests arriving meanwhile wait for it
	// instead of reading another.
	mu       sync.Mutex
	cached   *overview
	cachedAt time.Time
}

func newStatusPage(cfg Config, now func() time.Time, logger *slog.Logger) *statusPage {
	cacheFor := cfg.StatusCacheFor
	if cacheFor <= 0 {
		cacheFor = 5 * time.Second
	}
	return &statusPage{
		store:        cfg.Store,
		redis:        cfg.Redis,
		queue:        newQueueCollector(cfg.Redis, cfg.Keys, cfg.Group, now),
		keys:         cfg.Keys,
		window:       cfg.FailureWindow,
		pastDueAfter: cfg.PastDueAfter,
		timeout:      cfg.ScrapeTimeout,
		cacheFor:     cacheFor,
		now:          now,
		logger:       logger,
	}
}

// page is what the layout renders: the title, whether the page reloads itself, and the
// page's own content.
type page struct {
	Title   string
	Refresh int
	Body    any
}

// overview is the status page's content.
type overview struct {
	Taken string
	// Problems are short lines saying which datastore could not be read; the page is served
	// with 503 when there is one.
	Problems []string
	// RedisRead and PostgresRead say which parts below were read.
	RedisRead, PostgresRead bool
	Queues                  []queueRow
	Statuses                []countRow
	FailureWindow           string
	FailureRates            []rateRow
	PastDue                 string
	PastDueAfter            string
	Failures                []failureRow
}

type queueRow struct {
	Name                         string
	Length, Pending, DeadLetters int64
	OldestAge                    string
}

type countRow struct {
	Status string
	Count  int64
}

type rateRow struct {
	Channel           string
	Failed, Delivered int64
	Rate              string
}

type failureRow struct {
	ID, Channel, Priority, Recipient, Attempts, Failed, Error string
}

// overview returns the overview read at most cacheFor ago, reading it again when it is older.
func (p *statusPage) overview(ctx context.Context) overview {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cached != nil && time.Since(p.cachedAt) < p.cacheFor {
		return *p.cached
	}
	// A reader that goes away must not leave those waiting behind it without an overview.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	o := p.read(ctx)
	p.cached, p.cachedAt = &o, time.Now()
	return o
}

// read reads the overview: Redis and PostgreSQL at once, so that one that hangs does not use
// up the other's time.
func (p *statusPage) read(ctx context.Context) overview {
	o := overview{
		Taken:         p.now().UTC().Format(time.RFC3339),
		FailureWindow: p.window.String(),
		PastDueAfter:  p.pastDueAfter.String(),
	}
	var redisErr, postgresErr error
	var wg sync.WaitGroup
	wg.Go(func() { o.Queues, redisErr = p.readQueues(ctx) })
	wg.Go(func() { postgresErr = p.readStore(ctx, &o) })
	wg.Wait()
	if redisErr != nil {
		p.logger.Warn("status page: read Redis", "error", redisErr.Error())
		o.Problems = append(o.Problems, "Redis could not be read: queue lengths and dead letters are not shown.")
	}
	if postgresErr != nil {
		p.logger.Warn("status page: read PostgreSQL", "error", postgresErr.Error())
		o.Problems = append(o.Problems, "PostgreSQL could not be read: counts, failure rates and failures are not shown.")
	}
	o.RedisRead, o.PostgresRead = redisErr == nil, postgresErr == nil
	return o
}

// readQueues reads each priority's stream and dead-letter stream as the queue and dead_letter
// collectors do.
func (p *statusPage) readQueues(ctx context.Context) ([]queueRow, error) {
	deadLetters, err := deadLetterLengths(ctx, p.redis, p.keys)
	if err != nil {
		return nil, err
	}
	rows := make([]queueRow, len(notification.Priorities))
	for i, pr := range notification.Priorities {
		b, err := p.queue.backlog(ctx, p.keys.Stream(string(pr)))
		if err != nil {
			return nil, err
		}
		age := "none waiting"
		if b.length > 0 && b.oldest != "" {
			age = shortDuration(max(0, p.now().Sub(entryTime(b.oldest))))
		}
		rows[i] = queueRow{Name: QueueName(pr), Length: b.length, Pending: b.pending, DeadLetters: deadLetters[i], OldestAge: age}
	}
	return rows, nil
}

// readStore reads the status counts, failure rates and past-due count as their collectors do,
// and the latest failures.
func (p *statusPage) readStore(ctx context.Context, o *overview) error {
	counts, err := p.store.StatusCounts(ctx)
	if err != nil {
		return err
	}
	rates, err := failureRates(ctx, p.store, p.now().Add(-p.window))
	if err != nil {
		return err
	}
	pastDue, err := p.store.CountPastDue(ctx, p.now().Add(-p.pastDueAfter))
	if err != nil {
		return err
	}
	failed, err := p.store.LatestFailures(ctx, latestFailuresShown)
	if err != nil {
		return err
	}
	for _, st := range notification.Statuses {
		o.Statuses = append(o.Statuses, countRow{Status: string(st), Count: counts[st]})
	}
	for _, r := range rates {
		o.FailureRates = append(o.FailureRates, rateRow{Channel: string(r.channel), Failed: r.failed,
			Delivered: r.delivered, Rate: strconv.FormatFloat(r.rate, 'f', 1, 64) + "%"})
	}
	o.PastDue = strconv.FormatInt(pastDue, 10)
	if pastDue >= store.PastDueCap {
		o.PastDue += " or more"
	}
	for _, n := range failed {
		o.Failures = append(o.Failures, failureRow{
			ID: n.ID, Channel: string(n.Channel), Priority: string(n.Priority),
			Recipient: notification.MaskRecipient(n.Channel, n.To),
			Attempts:  strconv.Itoa(n.Attempts) + " of " + strconv.Itoa(n.MaxAttempts),
			Failed:    formatTime(n.FailedAt), Error: errorText(n.LastError),
		})
	}
	return nil
}

// serveOverview serves the status page.
func (p *statusPage) serveOverview(w http.ResponseWriter, r *http.Request) {
	o := p.overview(r.Context())
	code := http.StatusOK
	if len(o.Problems) > 0 {
		code = http.StatusServiceUnavailable
	}
	p.render(w, code, overviewTemplate, page{Title: "Pulse status", Refresh: refreshSeconds, Body: o})
}

// timeline is the timeline page's content.
type timeline struct {
	ID, Source, EventID, Channel, Priority, Status, Recipient, Attempts, LastError string
	Events                                                                         []event
}

// event is one line of a timeline.
type event struct {
	at     time.Time
	At     string
	What   string
	Detail string
}

// serveTimeline serves the timeline of the notification named in the path.
func (p *statusPage) serveTimeline(w http.ResponseWriter, r *http.Request) {
	uid, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		p.problem(w, http.StatusBadRequest, "Not a notification id", "A notification id is a UUID, such as 0190c0de-5a3b-7c4d-8e9f-0123456789ab.")
		return
	}
	id := uid.String()
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	// List leaves the bodies out, which Get would read.
	found, _, err := p.store.List(ctx, store.Filter{IDs: []string{id}}, nil, 1)
	if err != nil {
		p.unavailable(w, err)
		return
	}
	if len(found) == 0 {
		p.problem(w, http.StatusNotFound, "No such notification", "No notification has the id "+id+"; it may have been purged.")
		return
	}
	attempts, err := p.store.Attempts(ctx, id)
	if err != nil {
		p.unavailable(w, err)
		return
	}
	n := found[0]
	p.render(w, http.StatusOK, timelineTemplate, page{Title: "Notification " + id, Refresh: refreshSeconds, Body: timeline{
		ID: id, Source: n.Source, EventID: n.EventID, Channel: string(n.Channel), Priority: string(n.Priority),
		Status: string(n.Status), Recipient: notification.MaskRecipient(n.Channel, n.To),
		Attempts:  strconv.Itoa(n.Attempts) + " of " + strconv.Itoa(n.MaxAttempts),
		LastError: errorText(n.LastError), Events: events(n, attempts),
	}})
}

// events lists what happened to n, oldest first. A notification keeps only the latest time
// it entered each state; its attempts keep every try.
func events(n notification.Notification, attempts []store.AttemptRow) []event {
	var out []event
	add := func(at *time.Time, what, detail string) {
		if at != nil {
			out = append(out, event{at: *at, At: formatTime(at), What: what, Detail: detail})
		}
	}
	add(&n.CreatedAt, "requested", "")
	add(n.SendAt, "send at", "")
	add(n.QueuedAt, "queued", "latest time")
	add(n.SendingAt, "sending", "latest claim")
	for _, a := range attempts {
		add(&a.StartedAt, "attempt "+strconv.Itoa(a.Attempt)+": "+a.Outcome, attemptDetail(a))
	}
	add(n.NextAttemptAt, "next attempt due", "")
	add(n.DeliveredAt, "delivered", "")
	add(n.FailedAt, "failed", "")
	add(n.CancelledAt, "cancelled", "")
	add(n.ExpiredAt, "expired", "")
	add(n.ExpiresAt, "expires", "")
	slices.SortStableFunc(out, func(a, b event) int { return a.at.Compare(b.at) })
	return out
}

// attemptDetail says how an attempt went: the provider's answer, the account, how long it
// took and its error.
func attemptDetail(a store.AttemptRow) string {
	var parts []string
	if a.StatusCode != 0 {
		parts = append(parts, "status "+strconv.Itoa(a.StatusCode))
	}
	if a.Account != "" {
		parts = append(parts, "account "+a.Account)
	}
	if a.ErrorCode != "" {
		parts = append(parts, "code "+a.ErrorCode)
	}
	if a.Duration > 0 {
		parts = append(parts, "took "+shortDuration(a.Duration))
	}
	if a.Error != "" {
		parts = append(parts, errorText(a.Error))
	}
	return strings.Join(parts, " · ")
}

// unavailable answers that PostgreSQL could not be read.
func (p *statusPage) unavailable(w http.ResponseWriter, err error) {
	p.logger.Warn("status page: read PostgreSQL", "error", err.Error())
	p.problem(w, http.StatusServiceUnavailable, "PostgreSQL is unavailable", "PostgreSQL could not be read; this page tries again every "+strconv.Itoa(refreshSeconds)+" seconds.")
}

// problem is the content of a page that could not be shown.
type problem struct {
	Code       int
	StatusText string
	Line       string
}

// problem answers code with a short page saying why.
func (p *statusPage) problem(w http.ResponseWriter, code int, title, line string) {
	refresh := 0
	if code >= 500 {
		refresh = refreshSeconds
	}
	p.render(w, code, problemTemplate, page{Title: title, Refresh: refresh,
		Body: problem{Code: code, StatusText: http.StatusText(code), Line: line}})
}

// render writes a page. It is rendered before anything is written, so a template that fails
// gives a plain 500, not half a page.
func (p *statusPage) render(w http.ResponseWriter, code int, t *template.Template, data page) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		p.logger.Error("status page: render", "error", err.Error())
		http.Error(w, "the status page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No scripts, no frames, nothing loaded from elsewhere: the pages are text and a style.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// errorText is an error as the pages show it: on one line, at most maxErrorRunes long.
func errorText(s string) string {
	return channel.OneLine(s, maxErrorRunes)
}

// formatTime formats a time in UTC, or "" for none.
func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// shortDuration formats d to the second, or to the millisecond under a second.
func shortDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
