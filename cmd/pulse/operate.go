package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// Exit codes of the operator commands (docs/operations.md).
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitNoMatches = 3
)

// exitError carries the exit code an error ends the command with.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitCodeError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// parseArgs parses a command's flags; a bad flag is a usage error (exit code 2), -h is none.
func parseArgs(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitCodeError{code: exitUsage, err: err}
}

// errNothingMatched ends a command that found nothing to show or move, with exit code 3.
var errNothingMatched = &exitCodeError{code: exitNoMatches, err: errors.New("no notification matched")}

// exitCode returns the exit code err ends the process with.
func exitCode(err error) int {
	var e *exitCodeError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &e):
		return e.code
	default:
		return exitError
	}
}

const operatorEnv = `
environment:
  PULSE_URL     ingest's base URL (default http://127.0.0.1:8080); --url overrides it
  PULSE_TOKEN   bearer token sent to ingest (never printed); --token overrides it

filters (all optional, combined with AND; --filter KEY=VALUE is the same as --KEY VALUE):
  --status S[,S…]  scheduled, queued, sending, retrying, delivered, failed, cancelled, expired
  --channel C      email, sms, push or webhook
  --priority P     high or low
  --source SRC     CloudEvent source, exactly
  --since T        created at or after T: RFC 3339 (2026-03-01T12:00:00Z) or an age (2h, 30m)
  --until T        created before T: RFC 3339 or an age
  --error TEXT     last error contains TEXT, ignoring case (at least 3 characters)

exit codes:
  0  done
  1  error: ingest unreachable or failing, credentials refused
  2  usage: bad flags, or ingest refused a filter (the message names it)
  3  nothing matched
`

// operatorFlags are the flags list, retry and cancel share.
type operatorFlags struct {
	cfg    *config.Client
	filter ingest.Filter
	output string
	help   func()
}

func newOperatorFlags(name, synopsis, about string, stdout io.Writer) (*flag.FlagSet, *operatorFlags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := clientConfig(fs)
	if err != nil {
		return nil, nil, err
	}
	o := &operatorFlags{cfg: cfg}
	fields := map[string]*string{"status": &o.filter.Status, "channel": &o.filter.Channel, "priority": &o.filter.Priority,
		"source": &o.filter.Source, "since": &o.filter.Since, "until": &o.filter.Until, "error": &o.filter.Error}
	for _, n := range []string{"status", "channel", "priority", "source", "since", "until", "error"} {
		fs.StringVar(fields[n], n, "", "filter by "+n)
	}
	fs.Func("filter", "KEY=VALUE filter, repeatable (the same as --KEY VALUE)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		p, known := fields[k]
		if !ok || !known {
			return fmt.Errorf("want KEY=VALUE with KEY one of status, channel, priority, source, since, until, error")
		}
		*p = val
		return nil
	})
	fs.StringVar(&o.output, "o", "table", "output: table or json")
	fs.Usage = func() {} // parse prints the help for -h; other flag errors say what is wrong
	o.help = func() {
		fmt.Fprintf(stdout, "usage: %s\n\n%s\nflags:\n", synopsis, about)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(stdout, operatorEnv)
	}
	return fs, o, nil
}

// parse parses args, printing help for -h.
func (o *operatorFlags) parse(fs *flag.FlagSet, args []string, now time.Time) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			o.help()
			return err
		}
		return usageError("%s: %v (pulse %s -h for help)", fs.Name(), err, fs.Name())
	}
	if o.output != "table" && o.output != "json" {
		return usageError("-o %q: want table or json", o.output)
	}
	for _, t := range []*string{&o.filter.Since, &o.filter.Until} {
		if *t == "" {
			continue
		}
		if d, err := time.ParseDuration(*t); err == nil {
			*t = now.Add(-d).UTC().Format(time.RFC3339Nano)
		}
	}
	return nil
}

// client talks to ingest's operator API.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(cfg *config.Client) *client {
	return &client{base: strings.TrimRight(cfg.URL, "/"), token: cfg.Token, http: &http.Client{Timeout: 2 * time.Minute}}
}

// redacted is the base URL fit for messages: without credentials or query.
func (c *client) redacted() string {
	u, err := url.Parse(c.base)
	if err != nil {
		return "(PULSE_URL, unparseable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// do sends a request to ingest and decodes a 200 answer into out. Answers that are not 200
// become errors with the exit code they call for; a 400's fields are named.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return usageError("PULSE_URL %s is not a URL", c.redacted())
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach ingest at %s (PULSE_URL): %w", c.redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read ingest's answer from %s: %w", c.redacted(), err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("ingest at %s answered something other than Pulse's JSON: %w", c.redacted(), err)
		}
		return nil
	}
	var eb ceserver.ErrorBody
	_ = json.Unmarshal(raw, &eb)
	switch {
	case resp.StatusCode == http.StatusBadRequest && len(eb.Fields) > 0:
		var parts []string
		for _, f := range eb.Fields {
			p := f.Field + ": " + f.Message
			if f.Details != "" {
				p += " (" + f.Details + ")"
			}
			parts = append(parts, p)
		}
		return usageError("ingest refused the request: %s", strings.Join(parts, "; "))
	case resp.StatusCode == http.StatusUnauthorized:
		return errors.New("ingest refused the token (PULSE_TOKEN): a valid bearer token is required")
	case resp.StatusCode == http.StatusNotFound && eb.Error == "":
		return fmt.Errorf("ingest at %s has no operator API (404): is it an older Pulse?", c.redacted())
	case resp.StatusCode == http.StatusNotFound:
		return &exitCodeError{code: exitNoMatches, err: fmt.Errorf("ingest at %s answered %s: %s", c.redacted(), resp.Status, eb.Error)}
	default:
		msg := eb.Error
		if msg == "" {
			msg = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		return fmt.Errorf("ingest at %s answered %s: %s", c.redacted(), resp.Status, msg)
	}
}

func filterQuery(f ingest.Filter) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "channel": f.Channel, "priority": f.Priority,
		"source": f.Source, "since": f.Since, "until": f.Until, "error": f.Error} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// listCmd prints the notifications a filter selects, newest first.
func listCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o, err := newOperatorFlags("list", "pulse list [filters] [--limit N] [--all] [--cursor C] [-o table|json]",
		"Lists the notifications the filters select and the token may see, newest first, a page at a time.\n"+
			"Without --all it prints one page and, when there is more, the command that prints the next.\n", stdout)
	if err != nil {
		return err
	}
	limit := fs.Int("limit", ingest.DefaultPageSize, fmt.Sprintf("page size, at most %d", ingest.MaxPageSize))
	all := fs.Bool("all", false, "follow the pages to the end")
	cursor := fs.String("cursor", "", "continue from the cursor a previous page printed")
	if err := o.parse(fs, args, time.Now()); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("list: unexpected argument %q (pulse list -h for help)", fs.Arg(0))
	}
	c := newClient(o.cfg)
	q := filterQuery(o.filter)
	q.Set("limit", strconv.Itoa(*limit))
	var out ingest.Page
	next := *cursor
	for {
		if next != "" {
			q.Set("cursor", next)
		}
		var page ingest.Page
		if err := c.do(ctx, http.MethodGet, "/v1/notifications?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		out.Notifications = append(out.Notifications, page.Notifications...)
		next = page.NextCursor
		if !*all || next == "" {
			break
		}
	}
	out.NextCursor = next
	if out.Notifications == nil {
		out.Notifications = []notification.Notification{}
	}
	if o.output == "json" {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		if err := writeTable(stdout, out.Notifications); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(stderr, "more: pulse list --cursor %s (same filters), or --all\n", next)
		}
	}
	if len(out.Notifications) == 0 {
		return errNothingMatched
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeTable prints notifications one a line; errors are cut to keep lines readable.
func writeTable(w io.Writer, ns []notification.Notification) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tSTATUS\tCHANNEL\tPRIORITY\tATTEMPTS\tSOURCE\tLAST ERROR")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", n.ID, n.CreatedAt.UTC().Format(time.RFC3339), n.Status,
			n.Channel, n.Priority, n.Attempts, n.MaxAttempts, n.Source, cut(oneLine(n.LastError), 60))
	}
	return tw.Flush()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// bulkCmd is pulse retry and pulse cancel: by ids, or by filter in batches that follow the
// answers' cursor, with a progress bar on a terminal.
func bulkCmd(ctx context.Context, name string, args []string, stdout, stderr io.Writer, isTerminal bool) error {
	verb, path, states := "replay", "/v1/notifications:retry", "failed or expired notifications back to queued with fresh attempts"
	if name == "cancel" {
		verb, path, states = "cancel", "/v1/notifications:cancel", "scheduled, queued or retrying notifications to cancelled"
	}
	fs, o, err := newOperatorFlags(name, "pulse "+name+" [flags] ID… | pulse "+name+" [flags] --status … [other filters]",
		"Moves "+states+",\nby id or by filter. Each request to ingest moves at most one batch in one transaction;\n"+
			"the command sends the next until none is left. Running it twice\n"+
			"never moves a notification twice: only rows still in those states move. The history of each\n"+
			"moved notification records a hash of the token and the --reason.\n", stdout)
	if err != nil {
		return err
	}
	dryRun := fs.Bool("dry-run", false, "count what would move; move nothing")
	reason := fs.String("reason", "", "why, recorded in each moved notification's history")
	batch := fs.Int("batch", ingest.DefaultBatch, fmt.Sprintf("notifications per request (transaction), at most %d", ingest.MaxBatch))
	if err := o.parse(fs, args, time.Now()); err != nil {
		return err
	}
	ids := fs.Args()
	hasFilter := o.filter != ingest.Filter{}
	switch {
	case len(ids) == 0 && !hasFilter:
		return usageError("%s: give notification ids or at least one filter (pulse %s -h for help)", name, name)
	case len(ids) > 0 && hasFilter:
		return usageError("%s: give notification ids or filters, not both", name)
	}
	c := newClient(o.cfg)
	total := ingest.BulkAnswer{DryRun: *dryRun, IDs: []string{}}
	send := func(req ingest.BulkRequest) (ingest.BulkAnswer, error) {
		req.DryRun = req.DryRun || *dryRun
		req.Reason, req.Batch = *reason, *batch
		var a ingest.BulkAnswer
		err := c.do(ctx, http.MethodPost, path, req, &a)
		if err == nil && a.Warning != "" {
			fmt.Fprintln(stderr, "pulse: warning:", a.Warning)
		}
		return a, err
	}
	var bar *progressbar.ProgressBar
	progress := func(n int) {
		if bar != nil {
			_ = bar.Add(n)
		}
	}
	if len(ids) > 0 {
		for start := 0; start < len(ids); start += ingest.MaxBatch {
			a, err := send(ingest.BulkRequest{IDs: ids[start:min(start+ingest.MaxBatch, len(ids))]})
			if err != nil {
				return err
			}
			total.Matched += a.Matched
			total.Moved += a.Moved
			total.IDs = append(total.IDs, a.IDs...)
		}
	} else {
		// Count first: a dry run's answer, and the progress bar's length.
		count, err := send(ingest.BulkRequest{Filter: o.filter, DryRun: true})
		if err != nil {
			return err
		}
		total.Matched = count.Matched
		if !*dryRun && count.Matched > 0 {
			if isTerminal {
				bar = progressbar.NewOptions64(count.Matched, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription(verb), progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
			}
			cursor := ""
			for {
				a, err := send(ingest.BulkRequest{Filter: o.filter, Cursor: cursor})
				if err != nil {
					return fmt.Errorf("%s stopped after %d notifications (running the same command again goes on): %w", verb, total.Moved, err)
				}
				total.Moved += a.Moved
				total.IDs = append(total.IDs, a.IDs...)
				progress(a.Moved)
				if a.NextCursor == "" {
					break
				}
				cursor = a.NextCursor
			}
			if bar != nil {
				_ = bar.Finish()
			}
		}
	}
	if o.output == "json" {
		if err := writeJSON(stdout, total); err != nil {
			return err
		}
	} else {
		past := map[string]string{"replay": "replayed", "cancel": "cancelled"}[verb]
		switch {
		case *dryRun && len(ids) == 0:
			fmt.Fprintf(stdout, "dry run: %d notifications would be %s\n", total.Matched, past)
		case *dryRun:
			fmt.Fprintf(stdout, "dry run: %d of the %d notifications named would be %s\n", total.Matched, len(ids), past)
		default:
			fmt.Fprintf(stdout, "%s %d notifications\n", past, total.Moved)
			for _, id := range total.IDs {
				fmt.Fprintln(stdout, id)
			}
		}
	}
	if (*dryRun && total.Matched == 0) || (!*dryRun && total.Moved == 0) {
		return errNothingMatched
	}
	return nil
}

// stdoutIsTerminal reports whether the progress bar may be drawn: only for a person watching,
// never into a pipe or a file a script reads.
func stdoutIsTerminal() bool { return term.IsTerminal(int(os.Stdout.Fd())) }
