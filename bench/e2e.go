package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pulse-knative/pulse/bench/loadgen"
	"github.com/pulse-knative/pulse/bench/proc"
	"github.com/pulse-knative/pulse/bench/stats"
	"github.com/pulse-knative/pulse/internal/capture"
)

// receiver is a capture that counts what it receives by notification id.
type receiver interface {
	// Stats returns the messages received, the distinct notifications among them, and those
	// it could not verify or attribute to a notification.
	Stats() (total, distinct, invalid int)
	// Received is signalled, coalescing, after each message.
	Received() <-chan struct{}
}

// sink is a run's capture, served from the bench process: a webhook receiver or an SMTP
// server.
type sink struct {
	receiver
	// To is every notification's recipient: the webhook's URL or an email address.
	To string
	// Channel is the notifications' channel; Env the settings that point Pulse at the sink.
	Channel string
	Env     map[string]string
	close   func()
}

// sinkRemembers bounds the ids the webhook sink keeps, in each of its two generations: more
// than a flood run's N, so its duplicates are all seen, and minutes of the soak's millions,
// where a redelivery after a lapsed lease or a reclaimed stream entry comes about a minute
// after the first delivery (PULSE_LEASE, PULSE_STREAM_RECLAIM_IDLE). The sink's memory stays
// flat however long a run is.
const sinkRemembers = 1 << 18

// startSink serves internal/capture's webhook receiver, which verifies each signature and
// answers after delay.
func startSink(delay time.Duration) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the sink: %w", err)
	}
	w := capture.NewWebhooks(secret, nil)
	w.Remember(sinkRemembers)
	w.Delay(delay)
	srv := &http.Server{Handler: w, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return &sink{receiver: w, To: "http://" + ln.Addr().String() + "/hook", Channel: "webhook",
		close: func() { srv.Close() }}, nil
}

// startMailSink serves the SMTP capture of internal/capture, which parses each message as
// MIME, with the email account that `pulse dev` points its deliver functions at: unencrypted
// (it is on this machine and needs no password), the default pool of connections.
func startMailSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the SMTP sink: %w", err)
	}
	// Only the SMTP capture is served; the SMS and push addresses are never dialled.
	ch, err := capture.NewChannels(capture.ChannelsConfig{SMTPAddr: ln.Addr().String(), SMSAddr: "127.0.0.1:9", PushAddr: "127.0.0.1:9"})
	if err != nil {
		ln.Close()
		return nil, err
	}
	go func() { _ = ch.SMTP.Serve(ln) }()
	return &sink{receiver: ch.SMTP, To: "someone@example.com", Channel: "email",
		Env:   map[string]string{"PULSE_CHANNELS": "webhook,email", "PULSE_EMAIL_ACCOUNTS": ch.Accounts["PULSE_EMAIL_ACCOUNTS"]},
		close: func() { _ = ch.Close() }}, nil
}

func (s *sink) Close() { s.close() }

// waitReceived waits until the sink has accepted n messages.
func (s *sink) waitReceived(ctx context.Context, n int) error {
	for {
		if total, _, _ := s.Stats(); total >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			total, _, invalid := s.Stats()
			return fmt.Errorf("sink received %d of %d (%d it could not verify or attribute): %w", total, n, invalid, ctx.Err())
		case <-s.Received():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitDelivered waits until n notifications of the run are in a final state in the database,
// since the sink's answer comes before the outcome is recorded.
func waitFinished(ctx context.Context, e *runEnv, n int) error {
	for {
		var done int
		err := e.pool.QueryRow(ctx, "select count(*) from notifications where status in ('delivered', 'failed') and source <> '"+fillSource+"'").Scan(&done)
		if err != nil {
			return fmt.Errorf("count finished notifications: %w", err)
		}
		if done >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d notifications finished: %w", done, n, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (h *Harness) e2eScenarios() []scenario {
	var out []scenario
	title := func(what string) string {
		return fmt.Sprintf("POST to delivered: ingest, stream-source, deliver-high as processes; %s; %d concurrent POSTs, %d dispatches in flight",
			what, h.opts.E2EConcurrency, h.opts.E2EStreamConcurrency)
	}
	for _, d := range h.opts.SinkDelays {
		sc := scenario{
			Name: "e2e-sink-" + durationName(d), Group: "End to end", Baseline: "drain-celery-sink-" + durationName(d),
			Title: title(fmt.Sprintf("webhook sink answers after %s", d)),
			Unit:  "delivered/s",
			run: func(ctx context.Context, rep int, profile bool) (Run, error) {
				return h.runE2E(ctx, func() (*sink, error) { return startSink(d) }, profile, h.opts.N, h.opts.E2EConcurrency, h.flood)
			},
		}
		if d == 0 {
			sc.Target = fmt.Sprintf("≥ %g× Celery", targetE2EOverCelery)
			sc.Check = func(s *Summary) bool { return s.Ratio >= targetE2EOverCelery }
		}
		out = append(out, sc)
	}
	return append(out, scenario{
		Name: "e2e-email", Group: "End to end", Baseline: "e2e-sink-0ms",
		Title: title("email to an SMTP sink in the bench (internal/capture on go-smtp, one account, unencrypted, the default pool of connections); baseline: the webhook run"),
		Unit:  "delivered/s",
		run: func(ctx context.Context, rep int, profile bool) (Run, error) {
			return h.runE2E(ctx, startMailSink, profile, h.opts.N, h.opts.E2EConcurrency, h.flood)
		},
	})
}

func durationName(d time.Duration) string {
	if d == 0 {
		return "0ms"
	}
	return d.String()
}

// flood sends n events as fast as E2EConcurrency requests in flight allow.
func (h *Harness) flood(ctx context.Context, t loadgen.Target, c *loadgen.Client, first, n int) loadgen.Result {
	return loadgen.Singles(ctx, t, c, first, n, h.opts.E2EConcurrency)
}

// runE2E posts n notifications to ingest with send over conns connections and waits until
// every one is delivered to the sink newSink starts, with ingest, deliver-high and the high
// stream's source each a process of its own.
func (h *Harness) runE2E(ctx context.Context, newSink func() (*sink, error), profile bool, n, conns int, send sender) (Run, error) {
	r := Run{N: n}
	e, s, err := h.newSinkEnv(ctx, newSink)
	if err != nil {
		return r, err
	}
	defer e.close()
	defer s.Close()
	ingest, err := e.start(ctx, "ingest", "ingest", s.Env, profile)
	if err != nil {
		return r, err
	}
	deliver, source, err := e.startDeliverPath(ctx, s.Env, h.opts.E2EStreamConcurrency, profile)
	if err != nil {
		return r, err
	}
	t := loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", ingest.Port), Source: benchSource, IDPrefix: "ev-",
		Channel: s.Channel, Sink: s.To, Priority: "high"}
	client := loadgen.NewClient(t.Addr, conns)
	defer client.Close()

	w, err := h.begin(ctx, []*proc.Process{ingest, deliver, source}, profile)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	res := send(ctx, t, client, 0, n)
	waitErr := s.waitReceived(ctx, res.Accepted)
	if waitErr == nil {
		waitErr = waitFinished(ctx, e, res.Accepted)
	}
	m := w.end(context.WithoutCancel(ctx), n)
	r.absorb(m)
	r.Errors, r.FirstError = res.Errors, res.FirstError
	r.extra("ingest_accept_per_s", float64(res.Accepted)/res.End.Sub(res.Start).Seconds())
	r.extra("ingest_p99_ms", stats.Latencies(res.Latencies).P99)
	if err := h.deliveryFigures(context.WithoutCancel(ctx), e, s, &r, t0); err != nil {
		return r, errors.Join(waitErr, err)
	}
	if waitErr != nil {
		r.Notes = append(r.Notes, waitErr.Error())
	}
	return r, nil
}

// newSinkEnv is newLoadEnv with a sink started by newSink; both are to be closed.
func (h *Harness) newSinkEnv(ctx context.Context, newSink func() (*sink, error)) (*runEnv, *sink, error) {
	e, err := h.newLoadEnv(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := newSink()
	if err != nil {
		e.close()
		return nil, nil, err
	}
	return e, s, nil
}

// startDeliverPath starts deliver-high with env and the high stream's source feeding it with
// concurrency dispatches in flight.
func (e *runEnv) startDeliverPath(ctx context.Context, env map[string]string, concurrency int, profile bool) (deliver, source *proc.Process, err error) {
	deliver, err = e.start(ctx, "deliver-high", "deliver-high", env, profile)
	if err != nil {
		return nil, nil, err
	}
	source, err = e.start(ctx, "stream-source-high", "stream-source", map[string]string{
		"PULSE_PRIORITY": "high", "K_SINK": fmt.Sprintf("http://127.0.0.1:%d/", deliver.Port), "PULSE_STREAM_CONSUMER": "bench",
		"PULSE_STREAM_CONCURRENCY": strconv.Itoa(concurrency),
	}, profile)
	return deliver, source, err
}

// deliveryFigures reads the run's outcome from the database's timestamps and the sink's
// counts: throughput from t0 to the last delivery, latency from created_at to delivered_at.
func (h *Harness) deliveryFigures(ctx context.Context, e *runEnv, s *sink, r *Run, t0 time.Time) error {
	var delivered, attempts int
	var last time.Time
	err := e.pool.QueryRow(ctx, `select count(*), coalesce(max(delivered_at), now()),
			(select count(*) from delivery_attempts)
		from notifications where status = 'delivered' and source <> '`+fillSource+`'`).Scan(&delivered, &last, &attempts)
	if err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	r.Missing = r.N - delivered
	r.Errors += r.Missing
	if d := last.Sub(t0).Seconds(); d > 0 {
		r.Throughput = float64(delivered) / d
	}
	total, distinct, invalid := s.Stats()
	r.Duplicates = total - distinct
	if attempts > delivered {
		r.Notes = append(r.Notes, fmt.Sprintf("%d delivery attempts for %d deliveries", attempts, delivered))
	}
	if invalid > 0 {
		r.Errors += invalid
		r.Notes = append(r.Notes, fmt.Sprintf("%d messages the sink could not verify or attribute (a bad webhook signature, a mail without X-Pulse-Notification-Id)", invalid))
	}
	lat, err := latencies(ctx, e, "delivered_at - created_at")
	if err != nil {
		return err
	}
	r.Latency = lat
	r.Stages = map[string]stats.Latency{}
	for name, expr := range map[string]string{
		"created→sending (commit, XADD, stream read, dispatch)": "sending_at - created_at",
		"sending→delivered (send, record)":                      "delivered_at - sending_at",
	} {
		if r.Stages[name], err = latencies(ctx, e, expr); err != nil {
			return err
		}
	}
	return nil
}

// latencies summarises expr, an interval, over the delivered notifications.
func latencies(ctx context.Context, e *runEnv, expr string) (stats.Latency, error) {
	rows, err := e.pool.Query(ctx, "select extract(epoch from "+expr+")::float8 from notifications where status = 'delivered' and source <> '"+fillSource+"'")
	if err != nil {
		return stats.Latency{}, fmt.Errorf("read latencies: %w", err)
	}
	defer rows.Close()
	var ds []time.Duration
	for rows.Next() {
		var s float64
		if err := rows.Scan(&s); err != nil {
			return stats.Latency{}, err
		}
		ds = append(ds, time.Duration(s*float64(time.Second)))
	}
	return stats.Latencies(ds), rows.Err()
}
