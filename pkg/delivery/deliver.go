package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pulse-knative/pulse/pkg/account"
	"github.com/pulse-knative/pulse/pkg/batch"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Deliverer delivers the notifications of one priority. Concurrent deliveries share their
// claim and record statements (group commit), so each costs a fraction of a commit.
type Deliverer struct {
	store   *store.Store
	claims  *batch.Batcher[string, claim]
	records *batch.Batcher[store.Attempt, error]
	// observations gathers the deliveries' metrics and writes them to Redis once a
	// metricsInterval; a delivery never waits for them.
	observations *recorder.Buffer
	providers    map[notification.Channel]channel.Provider
	recorder     *recorder.Recorder
	logger       *slog.Logger
	retry        config.Retry
	lease        time.Duration
	sendTimeout  time.Duration
	now          func() time.Time
	jitter       func() float64

	// mu guards closed; inflight counts the deliveries Close waits for.
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// ErrClosed means a delivery was asked of a Deliverer that is closing; nothing was claimed.
// It is answered 503, so the source sends the dispatch again, to a pod that is not going.
var ErrClosed error = notification.UnavailableError("deliverer is closed")

// DelivererConfig configures a Deliverer.
type DelivererConfig struct {
	// Store is where notifications are claimed and outcomes recorded.
	Store *store.Store
	// Providers send each channel's messages; a channel without one fails its notifications.
	Providers map[notification.Channel]channel.Provider
	// Recorder accumulates metrics in Redis; nil records none.
	Recorder *recorder.Recorder
	// Logger logs outcomes, never message content.
	Logger *slog.Logger
	// Retry is the retry schedule.
	Retry config.Retry
	// Lease is how long a claim lasts; SendTimeout bounds one send and must be shorter.
	Lease, SendTimeout time.Duration
	// Now is the clock backoff is computed from; nil means the store's clock.
	Now func() time.Time
	// Jitter returns a number in [0, 1) that spreads retries; nil means math/rand.
	Jitter func() float64
	// Batch bounds the claims or outcomes one statement carries; Committers is how many
	// statements of each kind run at once. Zero means 256 and 1.
	Batch, Committers int
}

// NewDeliverer returns a started Deliverer; Close it when done.
func NewDeliverer(cfg DelivererConfig) *Deliverer {
	d := &Deliverer{store: cfg.Store, providers: cfg.Providers, recorder: cfg.Recorder, logger: cfg.Logger,
		retry: cfg.Retry, lease: cfg.Lease, sendTimeout: cfg.SendTimeout, now: cfg.Now, jitter: cfg.Jitter}
	if d.now == nil {
		d.now = cfg.Store.Now
	}
	if d.jitter == nil {
		d.jitter = rand.Float64
	}
	size, workers := cmp.Or(cfg.Batch, 256), cmp.Or(cfg.Committers, 1)
	lease := cfg.Lease
	d.claims = batch.New(context.Background(), func(ctx context.Context, ids []string) ([]claim, error) {
		return d.claimMany(ctx, ids, lease)
	}, size, workers)
	d.records = batch.New(context.Background(), d.store.RecordMany, size, workers)
	d.claims.Start()
	d.records.Start()
	if d.recorder != nil {
		d.observations = d.recorder.NewBuffer(metricsInterval, d.logger)
	}
	return d
}

// metricsInterval is how often a deliver function writes its deliveries' metrics to Redis:
// one round trip a second however many it delivered, against a scrape interval of 15 s or
// more.
const metricsInterval = time.Second

// claim is a claimed notification and, when its recipient is suppressed, the suppression.
type claim struct {
	store.Claimed
	suppressed *store.Suppression
}

// claimMany claims a batch of notifications and looks their recipients up in the
// suppressions, one query for the batch. Webhook receivers are never suppressed (a failing
// URL is the receiver's trouble, not a missing recipient), so a batch of webhooks costs no
// lookup.
func (d *Deliverer) claimMany(ctx context.Context, ids []string, lease time.Duration) ([]claim, error) {
	claimed, err := d.store.ClaimMany(ctx, ids, lease)
	if err != nil {
		return nil, err
	}
	out := make([]claim, len(claimed))
	var addrs []store.Address
	for i, c := range claimed {
		out[i].Claimed = c
		if c.Err == nil && c.Notification.Channel != notification.Webhook {
			addrs = append(addrs, store.Address{Channel: string(c.Notification.Channel), Address: c.Notification.To})
		}
	}
	if len(addrs) == 0 {
		return out, nil
	}
	suppressed, err := d.store.Suppressed(ctx, addrs)
	if err != nil {
		// The claims hold: their leases run out and cron hands them back.
		return nil, err
	}
	for i, c := range out {
		if c.Err != nil {
			continue
		}
		if sup, ok := suppressed[store.Address{Channel: string(c.Notification.Channel), Address: c.Notification.To}]; ok {
			out[i].suppressed = &sup
		}
	}
	return out, nil
}

// Close waits for the deliveries under way to finish, each bounded by the send timeout and
// the time to record its outcome, then finishes the claims, records and metrics under way.
// Deliveries asked for after Close has begun get ErrClosed. So a shutdown whose HTTP budget
// ran out still lets every started send end and be recorded. Calls after the first do
// nothing.
func (d *Deliverer) Close() {
	d.mu.Lock()
	already := d.closed
	d.closed = true
	d.mu.Unlock()
	if already {
		return
	}
	d.inflight.Wait()
	d.claims.Stop()
	d.records.Stop()
	if d.observations != nil {
		d.observations.Close()
	}
}

// begin counts a delivery in, unless Close has begun.
func (d *Deliverer) begin() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.inflight.Add(1)
	return true
}

// Deliver claims the notification id, sends it and records what came of it. A notification
// that is not queued (a duplicate dispatch, or one already handled) is left alone and nil is
// returned. An error means the outcome could not be recorded: the caller answers 5xx so the
// dispatch is retried. The attempt's metrics are written after Deliver returns; Close waits
// for them.
//
// ctx bounds only the wait to hand the claim over. Once the notification is claimed, the send
// and the record run to their end whatever happens to ctx (the caller, a stream source's
// HTTP request, may go away): the send is bounded by the send timeout, and a send abandoned
// half way would be repeated, not saved.
func (d *Deliverer) Deliver(ctx context.Context, id string) error {
	if !d.begin() {
		return fmt.Errorf("deliver notification %s: %w", id, ErrClosed)
	}
	defer d.inflight.Done()
	// The logger is built only when a line is written: most deliveries write none above debug.
	logger := func() *slog.Logger { return d.logger.With("notification_id", id) }
	var n notification.Notification
	var suppressed *store.Suppression
	claimed, err := d.claims.Do(ctx, id)
	if err == nil {
		n, err, suppressed = claimed[0].Notification, claimed[0].Err, claimed[0].suppressed
	}
	switch {
	case errors.Is(err, notification.ErrNotClaimable), errors.Is(err, notification.ErrNotFound):
		if d.logger.Enabled(ctx, slog.LevelDebug) { // a duplicate dispatch need not build a logger
			logger().Debug("dispatch skipped: notification is not queued", "reason", err.Error())
		}
		return nil
	case err != nil:
		return err
	}

	// From here on the caller's going away changes nothing: the claim is ours, the send
	// finishes (bounded by sendTimeout) and its outcome is recorded.
	ctx = context.WithoutCancel(ctx)
	started := d.now()
	var res channel.Result
	if suppressed != nil {
		res = suppressedResult(*suppressed)
	} else {
		res = d.send(ctx, n)
	}
	took := d.now().Sub(started)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if errors.Is(res.Err, account.ErrThrottled) {
		return d.putBack(rctx, n, res, logger)
	}
	a := d.decide(n, res)
	a.StartedAt, a.Duration = started, took
	recorded, err := d.records.Do(rctx, a)
	if err == nil {
		err = recorded[0]
	}
	if errors.Is(err, notification.ErrLeaseLost) {
		logger().Warn("claim lost before the outcome was recorded; the attempt row is kept", "outcome", a.Outcome)
		return nil
	}
	if err != nil {
		return err
	}
	// A delivered attempt is logged at debug: at thousands a second the lines would cost more
	// than the sends, and every attempt is in delivery_attempts and the status API. Retries and
	// failures are logged at info.
	level := slog.LevelInfo
	if a.Status == notification.Delivered {
		level = slog.LevelDebug
	}
	if d.logger.Enabled(ctx, level) {
		logger().Log(ctx, level, "delivery attempt", "channel", n.Channel, "attempt", n.Attempts, "outcome", a.Outcome,
			"status", a.Status, "status_code", a.StatusCode, "account", a.Account, "error_code", a.ErrorCode,
			"duration_ms", took.Milliseconds())
	}
	if d.observations != nil {
		latency := d.now().Sub(n.CreatedAt)
		if n.SendAt != nil && n.SendAt.After(n.CreatedAt) {
			latency = d.now().Sub(*n.SendAt)
		}
		o := recorder.Observation{Channel: string(n.Channel), Priority: string(n.Priority), Outcome: a.Outcome,
			Latency: latency, Delivered: a.Status == notification.Delivered}
		// The answer does not wait for Redis; Close writes what is buffered.
		d.observations.Add(o)
	}
	return nil
}

// SuppressedReason starts the error of a notification that failed because its recipient is
// suppressed.
const SuppressedReason = "suppressed"

// suppressedResult is the outcome of a notification to a suppressed recipient: failed,
// without a send.
func suppressedResult(sup store.Suppression) channel.Result {
	return channel.Result{Outcome: channel.Permanent, ErrorCode: sup.ErrorCode,
		Err: fmt.Errorf("%s: the %s recipient is suppressed since %s (%s); remove the suppression to send to it again",
			SuppressedReason, sup.Channel, sup.CreatedAt.UTC().Format(time.RFC3339), sup.Reason)}
}

// putBack returns a notification whose send every account's rate limit held back to
// retrying, due when the soonest limit frees up; no attempt is counted or recorded.
func (d *Deliverer) putBack(ctx context.Context, n notification.Notification, res channel.Result, logger func() *slog.Logger) error {
	err := d.store.PutBack(ctx, n.ID, n.Attempts, max(res.RetryAfter, minPutBack))
	if errors.Is(err, notification.ErrLeaseLost) {
		logger().Warn("claim lost before a throttled notification was put back")
		return nil
	}
	if err != nil {
		return err
	}
	if d.logger.Enabled(ctx, slog.LevelDebug) { // every send a rate limit holds back comes here
		logger().Debug("throttled: put back", "channel", n.Channel, "retry_in_ms", res.RetryAfter.Milliseconds())
	}
	return nil
}

// minPutBack is the shortest delay of a put-back notification, so a limit that frees up at
// once does not make it spin.
const minPutBack = 100 * time.Millisecond

func (d *Deliverer) send(ctx context.Context, n notification.Notification) channel.Result {
	p, ok := d.providers[n.Channel]
	if !ok {
		return channel.Result{Outcome: channel.Permanent, Err: fmt.Errorf("channel %s has no provider configured", n.Channel)}
	}
	sctx, cancel := context.WithTimeout(ctx, d.sendTimeout)
	defer cancel()
	return p.Send(sctx, channel.Message{NotificationID: n.ID, Channel: string(n.Channel), To: n.To, Subject: n.Subject,
		Body: n.Body, HTML: n.HTML, Data: n.Data, Metadata: n.Metadata, Attempt: n.Attempts})
}

// decide turns a send's result into the notification's next state.
func (d *Deliverer) decide(n notification.Notification, res channel.Result) store.Attempt {
	a := store.Attempt{NotificationID: n.ID, Attempt: n.Attempts, Outcome: string(res.Outcome),
		StatusCode: res.StatusCode, ProviderMessageID: res.ProviderMessageID, Account: res.Account, ErrorCode: res.ErrorCode}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	switch res.Outcome {
	case channel.Delivered:
		a.Status = notification.Delivered
	case channel.Transient:
		if n.Attempts >= n.MaxAttempts {
			a.Status = notification.Failed
			a.Error = fmt.Sprintf("gave up after %d attempts: %s", n.Attempts, a.Error)
			break
		}
		next := d.now().Add(Backoff(d.retry.For(string(n.Channel)), n.Attempts, d.retry.Jitter, d.jitter(), res.RetryAfter))
		if n.ExpiresAt != nil && !next.Before(*n.ExpiresAt) {
			a.Status = notification.Expired
			a.Error = "expires before the next attempt: " + a.Error
			break
		}
		a.Status, a.NextAttemptAt = notification.Retrying, &next
	default:
		a.Status = notification.Failed
		// The recipient does not exist or opted out: later notifications to it fail without
		// a send. Not for webhooks, whose receivers come and go.
		a.Suppress = res.Undeliverable && n.Channel != notification.Webhook
	}
	return a
}

// Backoff returns the wait before the attempt after attempt (1 for the first): the schedule's
// entry for it (the last entry once the schedule runs out), spread by ±jitter using r in
// [0, 1), and never shorter than what the provider asked for in Retry-After.
func Backoff(schedule []time.Duration, attempt int, jitter, r float64, retryAfter time.Duration) time.Duration {
	wait := schedule[min(max(attempt-1, 0), len(schedule)-1)]
	wait = time.Duration(float64(wait) * (1 + jitter*(2*r-1)))
	return max(wait, retryAfter)
}
