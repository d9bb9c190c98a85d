// Command pulse is Pulse's local runtime and operator CLI:
//
//	pulse dev                  run every function, both stream sources, the cron schedules and
//	                           capture receivers in one process against local datastores
//	pulse migrate              apply the database migrations
//	pulse send [flags]         ask ingest for a notification
//	pulse get ID               show a notification, its state and its attempts
//	pulse inspect              show streams, consumer groups, dead letters and states
//	pulse suppressions list|remove  list or remove recipients Pulse no longer sends to
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"
)

const usage = `usage: pulse <command> [flags]

commands:
  dev        run the whole pipeline locally (ingest, deliver-high, deliver-low, stream sources,
             cron schedules, metrics, capture webhook receiver)
  migrate    apply the database migrations (PULSE_DATABASE_URL)
  send       ask ingest for a notification (pulse send -h for flags)
  get ID     show a notification, its state and its delivery attempts
  inspect    show streams, consumer groups, dead letters and notifications by state
  suppressions list|remove
             list or remove suppressed recipients (addresses a provider called undeliverable)

Run 'pulse <command> -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx := signals.NewContext()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "pulse:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command string, args []string) error {
	switch command {
	case "dev":
		return dev(ctx, args)
	case "migrate":
		return migrateCmd(ctx, args)
	case "send":
		return send(ctx, args)
	case "get":
		return get(ctx, args)
	case "inspect":
		return inspect(ctx, args)
	case "suppressions":
		return suppressions(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n\n%s", command, usage)
	}
}
