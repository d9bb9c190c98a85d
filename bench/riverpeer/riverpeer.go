package riverpeer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// Args are a delivery job's arguments: just the notification's id, as the Celery task gets.
type Args struct {
	NotificationID string `json:"id"`
}

// Kind names the job kind in River's table.
func (Args) Kind() string { return "pulse.deliver" }

// Config is what the worker process needs.
type Config struct {
	// DatabaseURL reaches the notifications table (its search_path names the run's schema).
	DatabaseURL string `envconfig:"DATABASE_URL" required:"true"`
	// Schema is where River's tables are (River's Schema option).
	Schema string `envconfig:"SCHEMA" required:"true"`
	// WebhookSecret ("whsec_...") signs each webhook, as Pulse signs them.
	WebhookSecret string `envconfig:"WEBHOOK_SECRET" required:"true"`
	// MaxWorkers is the queue's concurrency: the drain runs' concurrency.
	MaxWorkers int `envconfig:"MAX_WORKERS" default:"8"`
}

// The settings a Go team would change from River's defaults to drain a backlog fast: River's
// own benchmark (cmd/river bench) fetches with these, since the default 100 ms cooldown caps a
// queue at MaxWorkers jobs per 100 ms.
const (
	FetchCooldown     = 2 * time.Millisecond
	FetchPollInterval = 20 * time.Millisecond
)

// PoolConns is the size of the worker's pgx pool for a queue of maxWorkers: one connection
// per worker plus River's own (LISTEN, fetch, completer, leader election and maintenance).
func PoolConns(maxWorkers int) int32 { return int32(maxWorkers + 4) }

// Migrate creates River's tables in schema, reached through pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river's tables into %s: %w", schema, err)
	}
	return nil
}

// Enqueue inserts one delivery job per notification id into River's default queue in schema,
// in batches, with an insert-only client.
func Enqueue(ctx context.Context, pool *pgxpool.Pool, schema string, ids []string) error {
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: schema,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("river insert client: %w", err)
	}
	for first := 0; first < len(ids); first += 1000 {
		batch := ids[first:min(first+1000, len(ids))]
		params := make([]river.InsertManyParams, len(batch))
		for i, id := range batch {
			params[i] = river.InsertManyParams{Args: Args{NotificationID: id}}
		}
		if _, err := client.InsertManyFast(ctx, params); err != nil {
			return fmt.Errorf("enqueue river jobs: %w", err)
		}
	}
	return nil
}

// Worker delivers one notification per job.
type Worker struct {
	river.WorkerDefaults[Args]
	pool   *pgxpool.Pool
	http   *http.Client
	secret string
}

// NewWorker returns a worker using pool for the notifications table and keeping up to
// maxWorkers keep-alive connections to the sink.
func NewWorker(pool *pgxpool.Pool, secret string, maxWorkers int) *Worker {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxWorkers
	return &Worker{pool: pool, secret: secret, http: &http.Client{Transport: t, Timeout: 10 * time.Second}}
}

// Work loads the notification, POSTs its webhook and records the outcome. A webhook that
// fails is recorded as failed, as the Celery task does, rather than retried by River; a
// database error is returned, so River retries the job.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	id := job.Args.NotificationID
	var recipient, subject, body string
	var data, metadata json.RawMessage
	err := w.pool.QueryRow(ctx, `select recipient, subject, body, data, metadata from notifications where id = $1`, id).
		Scan(&recipient, &subject, &body, &data, &metadata)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load notification %s: %w", id, err)
	}
	sendErr := w.post(ctx, id, recipient, subject, body, data, metadata)
	status, lastError := "delivered", ""
	if sendErr != nil {
		status, lastError = "failed", sendErr.Error()
	}
	_, err = w.pool.Exec(ctx, `update notifications set status = $1, attempts = attempts + 1, last_error = $2,
		delivered_at = case when $3 then clock_timestamp() end,
		failed_at = case when $3 then null else clock_timestamp() end,
		finished_at = clock_timestamp(), updated_at = clock_timestamp() where id = $4`,
		status, lastError, sendErr == nil, id)
	if err != nil {
		return fmt.Errorf("record notification %s: %w", id, err)
	}
	return nil
}

// post sends the webhook, signed per Standard Webhooks as Pulse signs it.
func (w *Worker) post(ctx context.Context, id, recipient, subject, body string, data, metadata json.RawMessage) error {
	now := time.Now()
	raw, err := json.Marshal(map[string]any{
		"type": "dev.pulse.notification", "id": id, "timestamp": now.UTC().Format(time.RFC3339Nano),
		"data": data, "subject": subject, "body": body, "metadata": metadata,
	})
	if err != nil {
		return err
	}
	sig, err := channel.SignWebhook(w.secret, id, now, raw)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, recipient, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set(channel.HeaderWebhookID, id)
	req.Header.Set(channel.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(channel.HeaderWebhookSignature, sig)
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// NewClient returns the worker's River client: River's defaults, but for MaxWorkers on the
// default queue and the fetch settings above.
func NewClient(pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, NewWorker(pool, cfg.WebhookSecret, cfg.MaxWorkers))
	return river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:            cfg.Schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}},
		Workers:           workers,
		FetchCooldown:     FetchCooldown,
		FetchPollInterval: FetchPollInterval,
		Logger:            logger,
	})
}

// Run opens the pool, starts the worker and works until ctx ends, then stops River within
// ten seconds.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	pcfg.MaxConns = PoolConns(cfg.MaxWorkers)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("open pool: %w", err)
	}
	defer pool.Close()
	client, err := NewClient(pool, cfg, logger)
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	// Cancelling Start's context would stop River hard; the end of ctx stops it softly below.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return client.Stop(stopCtx)
}
