package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/fielderr"
)

// TypePing is the type of the events Knative's PingSource sends.
const TypePing = "dev.knative.sources.ping"

// maxPingBytes bounds a ping event; its data names a job.
const maxPingBytes = 64 << 10

// PingData is the data of the ping events the cron function runs jobs for.
type PingData struct {
	// Job names the job to run: release, recover, expire, purge or trim.
	Job string `json:"job"`
}

// JobOf returns the job a ping event asks for, or the field errors that make it unusable.
func JobOf(e event.Event) (string, *fielderr.Error) {
	if e.Type() != TypePing {
		return "", fielderr.InvalidValue(e.Type(), "type", "want "+TypePing)
	}
	if ct := e.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/json" && !strings.HasSuffix(mt, "+json")) {
			return "", fielderr.InvalidValue(ct, "datacontenttype", "want application/json")
		}
	}
	if len(e.Data()) == 0 {
		return "", fielderr.Missing("data")
	}
	var d PingData
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		return "", fielderr.New(`must be a JSON object such as {"job":"release"}`, "data")
	}
	if d.Job == "" {
		return "", fielderr.Missing("data.job")
	}
	for _, j := range Jobs {
		if d.Job == j {
			return d.Job, nil
		}
	}
	return "", fielderr.InvalidValue(d.Job, "data.job", "want one of "+strings.Join(Jobs, ", "))
}

// Handler receives ping events and runs the job each names. It answers 200 with the job's
// Report, 400 for an event it can never use (naming the bad field, such as data.job), and 5xx
// when the job failed, so the PingSource tries again; running a job again is harmless.
type Handler struct {
	scheduler *Scheduler
	logger    *slog.Logger
	// timeout bounds a run, its last batch included, once the request has gone.
	timeout time.Duration
}

// NewHandler returns the cron function's handler.
func NewHandler(s *Scheduler, logger *slog.Logger) *Handler {
	return &Handler{scheduler: s, logger: logger, timeout: 2 * s.budget}
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, ok := ceserver.ReadOneEvent(w, r, maxPingBytes, h.logger)
	if !ok {
		return
	}
	logger := h.logger.With("ce_id", e.ID(), "ce_source", e.Source())
	job, ferr := JobOf(e)
	if ferr != nil {
		ceserver.WriteError(w, logger, ferr)
		return
	}
	// A PingSource that gives up waiting must not cut a batch short: see Scheduler.Run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer cancel()
	report, err := h.scheduler.Run(ctx, job)
	attrs := []any{"job", job, "counts", report.Counts, "batches", report.Batches, "complete", report.Complete,
		"duration_ms", report.Duration.Milliseconds()}
	if err != nil {
		if errors.Is(err, ErrUnknownJob) {
			// JobOf checked the name; this is a bug, not bad input.
			err = fmt.Errorf("scheduler has no job %q: %w", job, err)
		}
		// WriteError logs the failure, with what the run did before it.
		ceserver.WriteError(w, logger.With(attrs...), err)
		return
	}
	// Most ticks find nothing to do: keep those at debug, so that the lines saying a job
	// moved work stand out (in pulse dev, beside the webhooks arriving).
	level := slog.LevelDebug
	for _, n := range report.Counts {
		if n != 0 {
			level = slog.LevelInfo
		}
	}
	logger.Log(ctx, level, "job done", attrs...)
	ceserver.WriteJSON(w, http.StatusOK, report)
}
