// Command pulse is Pulse's local runtime and operator CLI:
//
//	pulse dev                  run every function, both stream sources, the cron schedules and
//	                           capture receivers in one process against local datastores
//	pulse migrate              apply the database migrations
//	pulse send [flags]         ask ingest for a notification
//	pulse get ID               show a notification, its state and its attempts
//	pulse inspect              show streams, consumer groups, dead letters and states
//	pulse list [filters]       list notifications by status, channel, priority, source, time, error
//	pulse retry ID…|filters    replay failed or expired notifications
//	pulse cancel ID…|filters   cancel scheduled, queued or retrying notifications
//	pulse suppressions list|remove  list or remove recipients Pulse no longer sends to
//	pulse deadletter list      show the dead-letter entries with their notification's status
//	pulse deadletter redrive   add dead-letter entries back to their stream (ID... or --all)
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pulse-knative/pulse/pkg/function"
)

const usage = `usage: pulse <command> [flags]

commands:
  dev        run the whole pipeline locally (ingest, deliver-high, deliver-low, stream sources,
             cron schedules, metrics, capture webhook receiver)
  migrate    apply the database migrations
  send       ask ingest for a notification
  get ID     show a notification, its state and its delivery attempts
  inspect    show streams, consumer groups, dead letters and notifications by state
  deadletter list | redrive ID... | redrive --all
             show the dead-letter entries, or add them back to their stream
  help       show this list
  list       list notifications by status, channel, priority, source, time or error
  retry      replay failed or expired notifications, by id or filter (--dry-run to count)
  cancel     cancel scheduled, queued or retrying notifications, by id or filter
  suppressions list|remove
             list or remove suppressed recipients (addresses a provider called undeliverable)

environment: PULSE_URL and PULSE_TOKEN (send, get, list, retry, cancel, suppressions); PULSE_DATABASE_URL
(migrate, inspect, deadletter, dev); PULSE_REDIS_URL and PULSE_REDIS_PREFIX (inspect, deadletter, dev).
exit codes: 0 done, 1 error, 2 usage, 3 nothing matched (list, retry, cancel, suppressions).

Run 'pulse <command> -h' for a command's arguments, flags and environment variables.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx := function.SignalContext()
	err := run(ctx, os.Args[1], os.Args[2:])
	code := exitCode(err)
	if err != nil && code != exitOK && err != errNothingMatched {
		fmt.Fprintln(os.Stderr, "pulse:", err)
	}
	os.Exit(code)
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
	case "list":
		return listCmd(ctx, args, os.Stdout, os.Stderr)
	case "retry", "cancel":
		return bulkCmd(ctx, command, args, os.Stdout, os.Stderr, stdoutIsTerminal())
	case "suppressions":
		return suppressionsCmd(ctx, args, os.Stdout)
	case "deadletter":
		return deadletterCmd(ctx, args, os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	default:
		return usageError("unknown command %q\n\n%s", command, usage)
	}
}
