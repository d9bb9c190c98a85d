package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/deadletter"
	"github.com/pulse-knative/pulse/pkg/notification"
)

const deadletterUsage = `usage: pulse deadletter list [flags]
       pulse deadletter redrive [flags] ID... | --all

Run 'pulse deadletter list -h' or 'pulse deadletter redrive -h' for details.`

var deadletterCommands = map[string]command{
	"list": {
		name: "deadletter list",
		about: `Shows the entries of the dead-letter streams, oldest first per priority, with the status
of the notification each refers to. Without PULSE_DATABASE_URL and PULSE_REDIS_URL it reads the
local datastores pulse dev uses.`,
		env:      []any{&config.Database{}, &config.Redis{}},
		defaults: localDefaults(datastoreVars...),
		set:      []string{"PULSE_DATABASE_MIGRATE"},
	},
	"redrive": {
		name: "deadletter redrive",
		args: "ID... | --all",
		about: `Adds dead-letter entries back to their priority's stream. Only entries whose notification
is still queued go back; the others are dropped, since deliver would skip them.`,
		arguments: [][2]string{{"ID", "a dead-letter entry id, as pulse deadletter list shows it"}},
		env:       []any{&config.Database{}, &config.Redis{}},
		defaults:  localDefaults(datastoreVars...),
		set:       []string{"PULSE_DATABASE_MIGRATE"},
	},
}

// deadletterCmd lists and redrives dead letters. It talks to Redis and PostgreSQL directly, as
// inspect does: redrive is a Redis script and a status lookup, which an operator with the
// datastores' URLs can run from a Job or a laptop through a port-forward, and it keeps working
// when ingest is the thing that is down.
func deadletterCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(deadletterUsage)
	}
	sub, args := args[0], args[1:]
	cmd, ok := deadletterCommands[sub]
	if !ok {
		return fmt.Errorf("unknown deadletter command %q\n\n%s", sub, deadletterUsage)
	}
	fs := cmd.flagSet()
	output := fs.String("o", "table", "output format: table or json")
	var limit *int64
	var all *bool
	if sub == "list" {
		limit = fs.Int64("limit", 1000, "list at most this many entries per priority (at most 10000)")
	} else {
		all = fs.Bool("all", false, "redrive every dead-letter entry")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("-o: want table or json, got %q", *output)
	}
	if sub == "list" && fs.NArg() > 0 {
		return fmt.Errorf("deadletter list takes no arguments, got %q", fs.Args())
	}
	if sub == "redrive" && (*all == (fs.NArg() > 0)) {
		return errors.New("deadletter redrive: give entry ids or --all, not both nor neither")
	}

	ds, err := openDatastores(ctx)
	if err != nil {
		return err
	}
	defer ds.Close()
	m := deadletter.New(ds.Store, ds.Redis, ds.Keys, nil)

	if sub == "list" {
		entries, err := m.List(ctx, *limit)
		if err != nil {
			return err
		}
		return writeDeadLetters(stdout, *output, entries,
			"PRIORITY\tENTRY\tNOTIFICATION\tSTATUS\tCHANNEL\tDELIVERIES\tFAILED AT\tREASON",
			func(e deadletter.Entry) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", e.Priority, e.ID, e.NotificationID, statusOrGone(e.Status),
					e.Channel, e.Deliveries, e.FailedAt.UTC().Format(time.RFC3339), e.Reason)
			})
	}

	done, err := m.Redrive(ctx, fs.Args())
	if err != nil {
		return err
	}
	return writeDeadLetters(stdout, *output, done, "PRIORITY\tENTRY\tNOTIFICATION\tSTATUS\tOUTCOME",
		func(r deadletter.Redriven) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Priority, r.ID, r.NotificationID, statusOrGone(r.Status), r.Outcome)
		})
}

// writeDeadLetters writes rows as JSON (output "json"), or as a table: header, then the line
// of each row.
func writeDeadLetters[T any](stdout io.Writer, output string, rows []T, header string, line func(T) string) error {
	if output == "json" {
		return writeJSON(stdout, rows)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		fmt.Fprintln(w, line(r))
	}
	return w.Flush()
}

// statusOrGone is a notification's status as the dead-letter tables show it: "(gone)" when no
// notification has the entry's id any more.
func statusOrGone(s notification.Status) string {
	if s == "" {
		return "(gone)"
	}
	return string(s)
}
