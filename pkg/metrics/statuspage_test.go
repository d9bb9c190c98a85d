package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// servePage serves the exporter's handler on a test server and returns its base URL, without
// the trailing slash.
func servePage(t testing.TB, e *metrics.Exporter) string {
	t.Helper()
	return strings.TrimSuffix(serve(t, e), metrics.Path)
}

// pageResponse is a page as served.
type pageResponse struct {
	code int
	body string
	// text is the text the page shows, its characters references decoded.
	text string
	// byID holds the text of every element with an id, by id.
	byID map[string]string
	// links are the href of every link, in order.
	links []string
}

// getPage fetches and parses a status page.
func getPage(t testing.TB, url string) pageResponse {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), string(body))
	doc, err := html.Parse(strings.NewReader(string(body)))
	require.NoError(t, err)
	p := pageResponse{code: resp.StatusCode, body: string(body), text: text(doc), byID: map[string]string{}}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "id":
				p.byID[a.Val] = strings.TrimSpace(text(n))
			case a.Key == "href" && n.Data == "a":
				p.links = append(p.links, a.Val)
			}
		}
	}
	return p
}

// text is the text n holds.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// fixturePage is what the status page must show of the fixture, by element id: the values
// fixtureMetrics gives the scrape, as the page writes them.
func fixturePage() map[string]string {
	m := fixtureMetrics(fixtureChanges)
	want := map[string]string{
		"past-due": fmt.Sprint(m[`pulse_notifications_past_due{}`]),
		// The oldest entries waiting, from fixture's stream ids.
		"queue-high_priority-oldest": "40s",
		"queue-low_priority-oldest":  "1m30s",
		// The high stream's group read 4 entries, acknowledged one and dead-lettered one.
		"queue-high_priority-pending": "2",
		"queue-low_priority-pending":  "0",
	}
	for _, q := range []string{"high_priority", "low_priority"} {
		want["queue-"+q+"-length"] = fmt.Sprint(m[fmt.Sprintf(`pulse_queue_length{queue_name=%q}`, q)])
		want["queue-"+q+"-dead-letters"] = fmt.Sprint(m[fmt.Sprintf(`pulse_dead_letter_length{queue_name=%q}`, q)])
	}
	for _, st := range notification.Statuses {
		want["status-"+string(st)] = fmt.Sprint(m[fmt.Sprintf(`pulse_notifications_by_status{status=%q}`, st)])
	}
	for _, ch := range notification.Channels {
		want["failure-rate-"+string(ch)] = strconv.FormatFloat(m[fmt.Sprintf(`pulse_notification_failure_rate{channel=%q}`, ch)], 'f', 1, 64) + "%"
	}
	return want
}

// requireSame checks that every id of want shows its value on the page.
func requireSame(t testing.TB, want map[string]string, p pageResponse) {
	t.Helper()
	got := map[string]string{}
	for id := range want {
		got[id] = p.byID[id]
	}
	require.Equal(t, want, got, p.body)
}

// requireNothingPrivate checks that a page shows no body, subject, secret or whole address of
// the fixture's, in its markup or its text.
func requireNothingPrivate(t testing.TB, p pageResponse) {
	t.Helper()
	for _, shown := range []string{p.body, p.text} {
		for _, private := range []string{fixtureBody, fixtureSubject, fixtureSecret, "918273"} {
			require.NotContains(t, shown, private)
		}
		for ch, to := range fixtureRecipients {
			require.NotContains(t, shown, to, "the whole %s address", ch)
		}
	}
}

func TestStatusPageShowsWhatTheDatastoresHold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fixture(t)
	base := servePage(t, b.exporter())

	p := getPage(t, base+metrics.StatusPath)
	require.Equal(t, http.StatusOK, p.code, p.body)
	requireSame(t, fixturePage(), p)
	require.Contains(t, p.body, `<meta http-equiv="refresh" content="10">`)
	requireNothingPrivate(t, p)

	// The two failed notifications, newest first, masked, with their errors cut short.
	failed, _, err := b.store.List(context.Background(), store.Filter{Statuses: []notification.Status{notification.Failed}}, nil, 10)
	require.NoError(t, err)
	require.Len(t, failed, 2)
	var links []string
	for _, l := range p.links {
		if strings.HasPrefix(l, "notifications/") {
			links = append(links, strings.TrimPrefix(l, "notifications/"))
		}
	}
	require.Equal(t, []string{failed[0].ID, failed[1].ID}, links)
	require.Equal(t, notification.SMS, failed[0].Channel)
	for _, want := range []string{"+1555***0123", "s***@example.com", fixtureErrors[notification.Email], "send sms: provider answered 400: invalid number"} {
		require.Contains(t, p.byID["failures"], want)
	}
	require.NotContains(t, p.text, fixtureErrors[notification.SMS])
	require.Contains(t, p.byID["failures"], "…", "the long SMS error is cut")
}

func TestStatusPageTimeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	// A webhook that failed once, was released again and then failed for good.
	n := testfactory.Notification(ctx, t, b.store, &testfactory.NotificationOpts{
		Status: notification.Retrying, Channel: notification.Webhook, To: fixtureRecipients[notification.Webhook],
		Mutate: func(r *notification.Request) { r.Subject, r.Body = fixtureSubject, fixtureBody },
	})
	b.storeNow = b.storeNow.Add(2 * time.Minute)
	released, err := b.store.Release(ctx, 10)
	require.NoError(t, err)
	require.Len(t, released, 1)
	claimed, err := b.store.Claim(ctx, n.ID, time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.store.Record(ctx, store.Attempt{NotificationID: n.ID, Attempt: claimed.Attempts,
		Status: notification.Failed, Outcome: "permanent", StatusCode: 410, Error: "send webhook: receiver answered 410 Gone",
		StartedAt: b.storeNow, Duration: 120 * time.Millisecond}))
	base := servePage(t, b.exporter())

	// The overview links to it.
	overview := getPage(t, base+metrics.StatusPath)
	require.Equal(t, http.StatusOK, overview.code, overview.body)
	require.Contains(t, overview.links, "notifications/"+n.ID)
	requireNothingPrivate(t, overview)

	p := getPage(t, base+metrics.TimelinePath+n.ID)
	require.Equal(t, http.StatusOK, p.code, p.body)
	require.Equal(t, n.ID, p.byID["notification-id"])
	require.Equal(t, "failed", p.byID["notification-status"])
	require.Equal(t, "https://hooks.example.com", p.byID["notification-to"])
	require.Equal(t, "2 of 3", p.byID["notification-attempts"])
	timeline := p.byID["timeline"]
	first := strings.Index(timeline, "attempt 1: transient")
	second := strings.Index(timeline, "attempt 2: permanent")
	require.True(t, first >= 0 && second > first, "the attempts, in order:\n%s", timeline)
	require.Contains(t, timeline, "status 410 · took 120ms · send webhook: receiver answered 410 Gone")
	for _, what := range []string{"requested", "queued", "sending", "failed"} {
		require.Contains(t, timeline, what)
	}
	requireNothingPrivate(t, p)

	tests := map[string]struct {
		path string
		code int
		line string
	}{
		"unknown id":   {metrics.TimelinePath + "0190c0de-5a3b-7c4d-8e9f-0123456789ab", http.StatusNotFound, "No notification has the id 0190c0de-5a3b-7c4d-8e9f-0123456789ab"},
		"malformed id": {metrics.TimelinePath + "not-a-uuid", http.StatusBadRequest, "A notification id is a UUID"},
		"injection":    {metrics.TimelinePath + "%3Cscript%3E", http.StatusBadRequest, "A notification id is a UUID"},
		"not hex":      {metrics.TimelinePath + strings.Repeat("z", 36), http.StatusBadRequest, "A notification id is a UUID"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := getPage(t, base+tt.path)
			require.Equal(t, tt.code, p.code, p.body)
			require.Contains(t, p.byID["problem"], tt.line)
			require.NotContains(t, p.body, "<script>")
		})
	}
}

func TestStatusPageReadsAtMostOnceInItsCacheTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	testfactory.Notification(ctx, t, b.store, &testfactory.NotificationOpts{Status: notification.Delivered})
	cached := servePage(t, b.exporter(func(c *metrics.Config) { c.StatusCacheFor = time.Hour }))
	fresh := servePage(t, b.exporter(func(c *metrics.Config) { c.StatusCacheFor = time.Nanosecond }))
	for _, base := range []string{cached, fresh} {
		require.Equal(t, "1", getPage(t, base+metrics.StatusPath).byID["status-delivered"])
	}

	testfactory.Notification(ctx, t, b.store, &testfactory.NotificationOpts{Status: notification.Delivered})
	require.Equal(t, "1", getPage(t, cached+metrics.StatusPath).byID["status-delivered"], "read again within the cache time")
	require.Equal(t, "2", getPage(t, fresh+metrics.StatusPath).byID["status-delivered"])
}

func TestStatusPageWithADatastoreDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down, err := store.Open(ctx, config.Database{URL: "postgres://pulse@127.0.0.1:1/pulse?sslmode=disable&connect_timeout=2"})
	require.NoError(t, err)
	t.Cleanup(down.Close)
	redisSrv := pulsetest.StartRedis(t)
	redisSrv.Stop()

	tests := map[string]struct {
		mod func(*metrics.Config)
		// shown and hidden are ids the overview shows and leaves out.
		shown, hidden string
		line          string
	}{
		"PostgreSQL": {func(c *metrics.Config) { c.Store = down }, "queue-high_priority-length", "status-delivered",
			"PostgreSQL could not be read"},
		"Redis": {func(c *metrics.Config) { c.Redis = newRedis(t, redisSrv.URL()) }, "status-delivered", "queue-high_priority-length",
			"Redis could not be read"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.fixture(t)
			base := servePage(t, b.exporter(tt.mod))
			p := getPage(t, base+metrics.StatusPath)
			require.Equal(t, http.StatusServiceUnavailable, p.code, p.body)
			require.Contains(t, p.body, tt.line)
			require.Equal(t, fixturePage()[tt.shown], p.byID[tt.shown])
			require.NotContains(t, p.byID, tt.hidden)
			require.NotContains(t, p.body, "goroutine")
		})
	}

	t.Run("timeline", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		base := servePage(t, b.exporter(tests["PostgreSQL"].mod))
		p := getPage(t, base+metrics.TimelinePath+"0190c0de-5a3b-7c4d-8e9f-0123456789ab")
		require.Equal(t, http.StatusServiceUnavailable, p.code, p.body)
		require.Contains(t, p.byID["problem"], "PostgreSQL could not be read")
		require.NotContains(t, p.body, "127.0.0.1")
	})
}
