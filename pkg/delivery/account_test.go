package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/account"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// httpProvider is a test provider that speaks real HTTP to its account's server: it POSTs
// the notification id to the URL in its account's "target" parameter. 2xx is delivered,
// 5xx and connection failures transient, 404 permanent and undeliverable (the server's way
// of saying "no such recipient"), other 4xx permanent.
type httpProvider struct {
	target string
	client *http.Client
}

func (p *httpProvider) Send(ctx context.Context, m channel.Message) channel.Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target, strings.NewReader(m.NotificationID))
	if err != nil {
		return channel.Result{Outcome: channel.Permanent, Err: err}
	}
	req.Header.Set("X-To", m.To)
	resp, err := p.client.Do(req)
	if err != nil {
		return channel.Result{Outcome: channel.Transient, Err: errors.New("connection failed")}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch code := resp.StatusCode; {
	case code < 300:
		return channel.Result{Outcome: channel.Delivered, StatusCode: code, ProviderMessageID: "m-" + m.NotificationID}
	case code >= 500:
		return channel.Result{Outcome: channel.Transient, StatusCode: code, ErrorCode: "busy", Err: errors.New("busy")}
	case code == http.StatusNotFound:
		return channel.Result{Outcome: channel.Permanent, StatusCode: code, ErrorCode: "5.1.1", Undeliverable: true,
			Err: errors.New("no such user")}
	default:
		return channel.Result{Outcome: channel.Permanent, StatusCode: code, Err: errors.New("refused")}
	}
}

// peer is an HTTP server standing in for a provider account; it records what it received.
type peer struct {
	*httptest.Server
	// status is the answer to the next requests; 200 when unset.
	status atomic.Int32
	mu     sync.Mutex
	got    []arrival
}

type arrival struct {
	id, to string
	at     time.Time
}

func newPeer(t *testing.T) *peer {
	p := &peer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		at := time.Now()
		p.mu.Lock()
		p.got = append(p.got, arrival{id: string(body), to: r.Header.Get("X-To"), at: at})
		p.mu.Unlock()
		w.WriteHeader(int(max(p.status.Load(), 200)))
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *peer) arrivals() []arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// refusingURL is the address of a port nothing listens on: connections are refused.
func refusingURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + "/"
}

type accountBundle struct {
	storeBundle
	redis *redis.Client
	keys  queue.Keys
	clock atomic.Pointer[time.Time]
}

func setupAccounts(t *testing.T) *accountBundle {
	t.Helper()
	ctx := context.Background()
	b := &accountBundle{}
	now := time.Now().UTC().Truncate(time.Millisecond)
	b.clock.Store(&now)
	st, err := store.Open(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 8})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	b.store = store.New(st.Pool(), func() time.Time { return *b.clock.Load() })
	require.NoError(t, b.store.Migrate(ctx))
	redisURL, prefix := pulsetest.Redis(t)
	b.redis, err = queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	t.Cleanup(func() { b.redis.Close() })
	b.keys = queue.NewKeys(prefix)
	return b
}

func (b *accountBundle) advance(d time.Duration) {
	next := b.clock.Load().Add(d)
	b.clock.Store(&next)
}

// deliverer builds a Deliverer whose email accounts are test providers: accounts is
// PULSE_EMAIL_ACCOUNTS with "test://?target=URL" entries.
func (b *accountBundle) deliverer(t *testing.T, accounts string, mutate func(*config.Deliver)) (*delivery.Deliverer, map[notification.Channel]channel.Provider) {
	t.Helper()
	cfg := config.Deliver{WebhookSecret: secret(), SendTimeout: 5 * time.Second, Lease: time.Minute,
		BreakerThreshold: 100, BreakerCooldown: time.Minute, RateLimitWait: 2 * time.Second,
		Retry: config.Retry{Schedule: []time.Duration{10 * time.Second}, Jitter: 0}}
	require.NoError(t, cfg.EmailAccounts.Decode(accounts))
	if mutate != nil {
		mutate(&cfg)
	}
	reg := delivery.NewRegistry(cfg)
	client := &http.Client{Timeout: 2 * time.Second}
	reg.Register(notification.Email, "test", func(name string, u *url.URL) (channel.Provider, error) {
		return &httpProvider{target: u.Query().Get("target"), client: client}, nil
	})
	recorder := recorder.New(b.redis, b.keys)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	providers, err := delivery.Providers(cfg, delivery.ProviderDeps{Registry: reg, Redis: b.redis, Keys: b.keys,
		Recorder: recorder, Pod: "pod-1", Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, delivery.CloseProviders(providers)) })
	d := delivery.NewDeliverer(delivery.DelivererConfig{Store: b.store, Providers: providers, Logger: logger,
		Retry: cfg.Retry, Lease: cfg.Lease, SendTimeout: cfg.SendTimeout, Recorder: recorder,
		Jitter: func() float64 { return 0.5 }})
	t.Cleanup(d.Close)
	return d, providers
}

func (b *accountBundle) email(t *testing.T, count int, to string) []string {
	t.Helper()
	items := make([]store.NewNotification, count)
	for i := range items {
		items[i] = store.NewNotification{Source: "src", EventID: pulsetest.Name("e"), MaxAttempts: 3,
			Request: notification.Request{Channel: notification.Email, To: to, Priority: notification.High,
				Subject: "Hello", Body: "Hi"}}
	}
	acc, err := b.store.Insert(context.Background(), items)
	require.NoError(t, err)
	ids := make([]string, count)
	for i, a := range acc {
		ids[i] = a.ID
	}
	return ids
}

func (b *accountBundle) attempts(t *testing.T, id string) []store.AttemptRow {
	t.Helper()
	rows, err := b.store.Attempts(context.Background(), id)
	require.NoError(t, err)
	return rows
}

func TestFailoverToBackupAccount(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	backup := newPeer(t)
	d, _ := b.deliverer(t, "primary=test://?target="+url.QueryEscape(refusingURL(t))+
		",backup=test://?target="+url.QueryEscape(backup.URL), nil)
	ids := b.email(t, 1, "ada@example.com")
	require.NoError(t, d.Deliver(context.Background(), ids[0]))

	n := b.get(t, ids[0])
	require.Equal(t, notification.Delivered, n.Status)
	require.Equal(t, "m-"+ids[0], n.ProviderMessageID)
	require.Len(t, backup.arrivals(), 1)
	attempts := b.attempts(t, ids[0])
	require.Len(t, attempts, 1)
	require.Equal(t, "backup", attempts[0].Account, "the attempt names the account that delivered")
}

func TestEveryAccountFailingRetries(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	primary, backup := newPeer(t), newPeer(t)
	primary.status.Store(503)
	backup.status.Store(503)
	d, _ := b.deliverer(t, "primary=test://?target="+url.QueryEscape(primary.URL)+
		",backup=test://?target="+url.QueryEscape(backup.URL), nil)
	ids := b.email(t, 1, "ada@example.com")
	require.NoError(t, d.Deliver(context.Background(), ids[0]))

	require.Equal(t, notification.Retrying, b.get(t, ids[0]).Status)
	require.Len(t, primary.arrivals(), 1)
	require.Len(t, backup.arrivals(), 1)
	attempts := b.attempts(t, ids[0])
	require.Len(t, attempts, 1)
	require.Equal(t, "backup", attempts[0].Account)
	require.Equal(t, "busy", attempts[0].ErrorCode)
}

func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	primary, backup := newPeer(t), newPeer(t)
	primary.status.Store(503)
	// Long enough that the sends below all happen while the breaker is open, on a busy machine.
	const cooldown = 2 * time.Second
	d, providers := b.deliverer(t, "primary=test://?target="+url.QueryEscape(primary.URL)+
		",backup=test://?target="+url.QueryEscape(backup.URL), func(c *config.Deliver) {
		c.BreakerThreshold, c.BreakerCooldown = 3, cooldown
	})
	failover := providers[notification.Email].(*account.Failover)
	ctx := context.Background()

	ids := b.email(t, 6, "ada@example.com")
	for _, id := range ids[:3] {
		require.NoError(t, d.Deliver(ctx, id))
	}
	require.Len(t, primary.arrivals(), 3, "the primary was tried until its breaker opened")
	require.Equal(t, "open", failover.BreakerState("primary"))
	for _, id := range ids[3:] {
		require.NoError(t, d.Deliver(ctx, id))
	}
	require.Len(t, primary.arrivals(), 3, "an open breaker sends nothing to its account")
	require.Len(t, backup.arrivals(), 6)
	for _, id := range ids {
		require.Equal(t, notification.Delivered, b.get(t, id).Status)
		require.Equal(t, "backup", b.attempts(t, id)[0].Account)
	}
	// The pod reported the open breaker for the metrics function.
	require.Eventually(t, func() bool {
		v, err := b.redis.HGet(ctx, b.keys.Breakers(), recorder.BreakerField("email", "primary", "pod-1")).Result()
		return err == nil && strings.HasPrefix(v, "2:")
	}, 5*time.Second, 10*time.Millisecond)

	// After the cooldown one trial send goes to the primary; its success closes the breaker.
	primary.status.Store(200)
	require.Eventually(t, func() bool { return failover.BreakerState("primary") == "half-open" },
		5*cooldown, cooldown/20)
	last := b.email(t, 1, "ada@example.com")[0]
	require.NoError(t, d.Deliver(ctx, last))
	require.Equal(t, "primary", b.attempts(t, last)[0].Account)
	require.Equal(t, "closed", failover.BreakerState("primary"))
	require.Eventually(t, func() bool {
		_, err := b.redis.HGet(ctx, b.keys.Breakers(), recorder.BreakerField("email", "primary", "pod-1")).Result()
		return errors.Is(err, redis.Nil)
	}, 5*time.Second, 10*time.Millisecond, "a closed breaker removes the pod's report")
}

func TestSuppression(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	relay := newPeer(t)
	relay.status.Store(http.StatusNotFound)
	d, _ := b.deliverer(t, "relay=test://?target="+url.QueryEscape(relay.URL), nil)
	ctx := context.Background()

	first := b.email(t, 1, "gone@example.com")[0]
	require.NoError(t, d.Deliver(ctx, first))
	require.Equal(t, notification.Failed, b.get(t, first).Status)
	addr := store.Address{Channel: "email", Address: "gone@example.com"}
	sups, err := b.store.Suppressions(ctx, "email", "gone@example.com", 10)
	require.NoError(t, err)
	require.Len(t, sups, 1)
	require.Equal(t, first, sups[0].NotificationID)
	require.Equal(t, "5.1.1", sups[0].ErrorCode)

	// The next notification to it fails without a send; others still go.
	relay.status.Store(200)
	second := b.email(t, 1, "gone@example.com")[0]
	other := b.email(t, 1, "ada@example.com")[0]
	require.NoError(t, d.Deliver(ctx, second))
	require.NoError(t, d.Deliver(ctx, other))
	n := b.get(t, second)
	require.Equal(t, notification.Failed, n.Status)
	require.True(t, strings.HasPrefix(n.LastError, delivery.SuppressedReason+":"), n.LastError)
	require.Equal(t, notification.Delivered, b.get(t, other).Status)
	got := relay.arrivals()
	require.Len(t, got, 2, "the suppressed recipient cost no send")
	require.Equal(t, "ada@example.com", got[1].to)

	// Removing the suppression lets the next one through.
	require.NoError(t, b.store.Unsuppress(ctx, addr))
	third := b.email(t, 1, "gone@example.com")[0]
	require.NoError(t, d.Deliver(ctx, third))
	require.Equal(t, notification.Delivered, b.get(t, third).Status)
	require.Len(t, relay.arrivals(), 3)
}

// TestRateLimitSharedByDeliverers: three deliverers (as three pods would) share an account
// limited to perSecond sends a second, with 5×perSecond notifications queued at once. The
// relay never sees more than perSecond+1 sends in any one-second window: GCRA spaces sends
// 1/perSecond apart by Redis's clock, and a window closed at both ends can hold one more
// than a second's worth; the +1 is the tolerance. Every notification is delivered exactly
// once: a throttled one is put back uncounted and released again.
func TestRateLimitSharedByDeliverers(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	relay := newPeer(t)
	const perSecond = 10
	accounts := fmt.Sprintf("relay=test://?target=%s&rate=%d/s", url.QueryEscape(relay.URL), perSecond)
	var ds []*delivery.Deliverer
	for range 3 {
		d, _ := b.deliverer(t, accounts, func(c *config.Deliver) { c.RateLimitWait = time.Second })
		ds = append(ds, d)
	}
	ctx := context.Background()
	ids := b.email(t, 5*perSecond, "ada@example.com")

	pending := ids
	for round := 0; len(pending) > 0; round++ {
		require.Less(t, round, 20, "notifications still not delivered: %d", len(pending))
		var g errgroup.Group
		for i, id := range pending {
			g.Go(func() error { return ds[i%len(ds)].Deliver(ctx, id) })
		}
		require.NoError(t, g.Wait())
		// Put-back notifications are retrying, uncounted; release them as cron would.
		pending = nil
		for _, id := range ids {
			n := b.get(t, id)
			switch n.Status {
			case notification.Delivered:
			case notification.Retrying:
				require.Equal(t, 0, n.Attempts, "a throttled send is not an attempt")
				pending = append(pending, id)
			default:
				t.Fatalf("notification %s is %s", id, n.Status)
			}
		}
		b.advance(time.Hour)
		due, err := b.store.Release(ctx, len(ids))
		require.NoError(t, err)
		require.Len(t, due, len(pending))
	}

	got := relay.arrivals()
	seen := map[string]int{}
	for _, a := range got {
		seen[a.id]++
	}
	require.Len(t, seen, len(ids))
	for _, id := range ids {
		require.Equal(t, 1, seen[id], "notification %s sent %d times", id, seen[id])
		require.Len(t, b.attempts(t, id), 1)
	}
	slices.SortFunc(got, func(x, y arrival) int { return x.at.Compare(y.at) })
	for i := range got {
		j := i
		for j < len(got) && got[j].at.Sub(got[i].at) <= time.Second {
			j++
		}
		require.LessOrEqual(t, j-i, perSecond+1, "sends in the second from %s", got[i].at)
	}
	throttled, err := b.redis.HGet(ctx, b.keys.Throttled(), recorder.ThrottledField("email", "relay")).Int()
	require.NoError(t, err)
	require.Positive(t, throttled)
}
