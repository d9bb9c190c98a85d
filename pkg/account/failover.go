package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// Errors a Failover's Result wraps when it sent nothing.
var (
	// ErrThrottled means every account that could take the send was at its rate limit: the
	// notification is put back, due after the Result's RetryAfter, and no attempt is counted.
	ErrThrottled = errors.New("every account is at its rate limit")
	// ErrBreakerOpen means every account's circuit breaker is open. It is a transient
	// failure and counts as an attempt, so a provider that stays down exhausts the retry
	// schedule instead of holding notifications for ever.
	ErrBreakerOpen = errors.New("every account's circuit breaker is open")
)

// errTransient tells the breaker a send failed transiently.
var errTransient = errors.New("transient failure")

// defaultThrottleWait is the put-back delay when the limiter gave none (Redis failed).
const defaultThrottleWait = time.Second

// Config configures a Failover.
type Config struct {
	// Channel is the channel the accounts send.
	Channel notification.Channel
	// Accounts are tried in order.
	Accounts config.Accounts
	// Registry builds each account's provider from its URL.
	Registry *Registry
	// BreakerThreshold is how many transient failures in a row open an account's breaker;
	// BreakerCooldown how long it stays open before one trial send. Zero threshold means no
	// breakers.
	BreakerThreshold uint32
	BreakerCooldown  time.Duration
	// Redis holds the shared rate limits; nil is allowed only when no account has a rate.
	Redis redis.UniversalClient
	// Keys names the rate limit keys.
	Keys queue.Keys
	// RateLimitWait is the longest a send waits for an account's rate limit before it moves
	// to the next account (or, at the last, is put back).
	RateLimitWait time.Duration
	// Recorder publishes breaker states and throttle counts for the metrics function; nil
	// publishes nothing.
	Recorder *recorder.Recorder
	// Pod names this process in breaker reports.
	Pod string
	// Logger logs breaker changes; nil logs nothing.
	Logger *slog.Logger
}

// Failover sends a channel's messages through its ordered accounts. It is a channel.Provider
// and safe for concurrent use.
type Failover struct {
	channel  notification.Channel
	accounts []*account
	limiter  *redis_rate.Limiter
	keys     queue.Keys
	wait     time.Duration
	recorder *recorder.Recorder
	pod      string
	cooldown time.Duration
	logger   *slog.Logger
	// reports tracks the breaker reports under way, so Close can wait for them.
	reports sync.WaitGroup
}

var _ channel.Provider = (*Failover)(nil)

type account struct {
	name     string
	provider channel.Provider
	limit    redis_rate.Limit
	breaker  *gobreaker.CircuitBreaker[channel.Result]
}

// NewFailover builds every account's provider through the registry. It fails when an
// account's scheme is not registered for the channel or its provider refuses its URL.
func NewFailover(cfg Config) (*Failover, error) {
	if len(cfg.Accounts) == 0 {
		return nil, fmt.Errorf("build %s accounts: none configured", cfg.Channel)
	}
	f := &Failover{channel: cfg.Channel, keys: cfg.Keys, wait: cfg.RateLimitWait, recorder: cfg.Recorder,
		pod: cfg.Pod, cooldown: cfg.BreakerCooldown, logger: cfg.Logger}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	for _, acc := range cfg.Accounts {
		p, err := cfg.Registry.Build(cfg.Channel, acc.Name, acc.URL)
		if err != nil {
			f.Close()
			return nil, err
		}
		a := &account{name: acc.Name, provider: p}
		f.accounts = append(f.accounts, a)
		if !acc.Rate.IsZero() {
			if cfg.Redis == nil {
				f.Close()
				return nil, fmt.Errorf("build %s account %s: a rate limit needs Redis", cfg.Channel, acc.Name)
			}
			// A burst of one spaces sends evenly, so no window of Per ever holds more than
			// Count of them.
			a.limit = redis_rate.Limit{Rate: acc.Rate.Count, Period: acc.Rate.Per, Burst: 1}
		}
		if cfg.BreakerThreshold > 0 {
			threshold := cfg.BreakerThreshold
			a.breaker = gobreaker.NewCircuitBreaker[channel.Result](gobreaker.Settings{
				Name:        acc.Name,
				MaxRequests: 1,
				Timeout:     cfg.BreakerCooldown,
				ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
				// A send cut short by our own shutdown says nothing about the provider.
				IsExcluded:    func(err error) bool { return errors.Is(err, context.Canceled) },
				OnStateChange: func(name string, _, to gobreaker.State) { f.report(name, to) },
			})
		}
	}
	if cfg.Redis != nil {
		f.limiter = redis_rate.NewLimiter(cfg.Redis)
	}
	for _, a := range f.accounts {
		if a.breaker != nil {
			f.publish(a.name, gobreaker.StateClosed)
		}
	}
	return f, nil
}

// report logs and publishes a breaker's change of state.
func (f *Failover) report(name string, state gobreaker.State) {
	f.logger.Info("circuit breaker changed state", "channel", string(f.channel), "account", name, "state", state.String())
	f.publish(name, state)
}

// publish publishes an account's breaker state in the background: OnStateChange runs under
// the breaker's lock, where no I/O belongs.
func (f *Failover) publish(name string, state gobreaker.State) {
	if f.recorder == nil {
		return
	}
	var until time.Time
	if state != gobreaker.StateClosed {
		until = time.Now().Add(f.cooldown)
	}
	f.reports.Add(1)
	go func() {
		defer f.reports.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.recorder.Breaker(ctx, string(f.channel), name, f.pod, int(state), until); err != nil {
			f.logger.Warn("breaker state not recorded", "channel", string(f.channel), "account", name, "error", err)
		}
	}()
}

// BreakerState returns the state of the named account's breaker: "closed", "half-open" or
// "open"; "closed" too when breakers are off or there is no such account.
func (f *Failover) BreakerState(name string) string {
	for _, a := range f.accounts {
		if a.name == name && a.breaker != nil {
			return a.breaker.State().String()
		}
	}
	return gobreaker.StateClosed.String()
}

// Send sends m through the first account that takes it. An account whose breaker is open is
// skipped; one at its rate limit is waited for up to RateLimitWait, then skipped; a
// transient failure moves on to the next account. The Result is the first one that is not
// transient, or the last transient one, and names its account. When no account was tried,
// the Result is transient and wraps ErrThrottled (all were at their limit; RetryAfter is when
// the soonest frees up) or ErrBreakerOpen.
func (f *Failover) Send(ctx context.Context, m channel.Message) channel.Result {
	var (
		last       *channel.Result
		throttled  bool
		throttleIn time.Duration
		limitErr   error
	)
	for _, a := range f.accounts {
		if a.breaker != nil && a.breaker.State() == gobreaker.StateOpen {
			continue
		}
		if a.limit.Rate > 0 {
			ok, retryIn, err := f.take(ctx, a)
			if !ok {
				if !throttled || retryIn < throttleIn {
					throttleIn = retryIn
				}
				throttled, limitErr = true, cmpErr(limitErr, err)
				continue
			}
		}
		res, err := f.send(ctx, a, m)
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			continue
		}
		res.Account = a.name
		if res.Outcome != channel.Transient {
			return res
		}
		last = &res
		if ctx.Err() != nil {
			break // no time left for another account
		}
	}
	switch {
	case last != nil:
		return *last
	case throttled:
		err := fmt.Errorf("send %s: %w", f.channel, ErrThrottled)
		if limitErr != nil {
			err = fmt.Errorf("send %s: %w: %w", f.channel, ErrThrottled, limitErr)
		}
		return channel.Result{Outcome: channel.Transient, RetryAfter: throttleIn, Err: err}
	}
	return channel.Result{Outcome: channel.Transient, Err: fmt.Errorf("send %s: %w", f.channel, ErrBreakerOpen)}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// send sends m through a, under its breaker when it has one.
func (f *Failover) send(ctx context.Context, a *account, m channel.Message) (channel.Result, error) {
	if a.breaker == nil {
		return a.provider.Send(ctx, m), nil
	}
	return a.breaker.Execute(func() (channel.Result, error) {
		res := a.provider.Send(ctx, m)
		if res.Outcome != channel.Transient {
			return res, nil // the provider answered: a permanent refusal is not an outage
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return res, context.Canceled
		}
		return res, errTransient
	})
}

// take takes a send from a's rate limit, waiting up to the configured wait. It reports
// whether the send may go ahead and, when not, how long until the limit frees up. A Redis
// failure holds the send back: sending anyway could break the provider's limit.
func (f *Failover) take(ctx context.Context, a *account) (bool, time.Duration, error) {
	key := f.keys.RateLimit(string(f.channel), a.name)
	deadline := time.Now().Add(f.wait)
	counted := false
	for {
		res, err := f.limiter.Allow(ctx, key, a.limit)
		if err != nil {
			return false, defaultThrottleWait, fmt.Errorf("rate limit of account %s: %w", a.name, err)
		}
		if res.Allowed > 0 {
			return true, 0, nil
		}
		if !counted {
			counted = true
			f.countThrottled(ctx, a.name)
		}
		if time.Now().Add(res.RetryAfter).After(deadline) {
			return false, res.RetryAfter, nil
		}
		timer := time.NewTimer(res.RetryAfter)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, res.RetryAfter, nil
		case <-timer.C:
		}
	}
}

func (f *Failover) countThrottled(ctx context.Context, name string) {
	if f.recorder == nil {
		return
	}
	if err := f.recorder.Throttled(ctx, string(f.channel), name); err != nil {
		f.logger.Warn("throttled send not counted", "channel", string(f.channel), "account", name, "error", err)
	}
}

// Close releases every account's provider that holds connections and waits for the breaker
// reports under way.
func (f *Failover) Close() error {
	var errs []error
	for _, a := range f.accounts {
		if c, ok := a.provider.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	f.reports.Wait()
	return errors.Join(errs...)
}
