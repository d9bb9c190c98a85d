package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
)

var inspectCommand = command{
	name: "inspect",
	about: `Shows each stream's length, its consumer groups with their pending entries and lag, the
dead letters, and the notifications by state: what celery inspect and Flower showed. Without
PULSE_DATABASE_URL and PULSE_REDIS_URL it reads the local datastores pulse dev uses.`,
	env:      []any{&config.Database{}, &config.Redis{}},
	defaults: localDefaults(datastoreVars...),
	set:      []string{"PULSE_DATABASE_MIGRATE"},
}

// inspect prints what `celery inspect active` and Flower showed: each stream's length, its
// consumer groups with their pending entries and lag, dead letters, and notifications by state.
func inspect(ctx context.Context, args []string) error {
	if err := inspectCommand.parseNoArgs(args); err != nil {
		return err
	}
	ds, err := openDatastores(ctx)
	if err != nil {
		return err
	}
	defer ds.Close()
	rdb, keys := ds.Redis, ds.Keys
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tLENGTH\tGROUP\tCONSUMERS\tPENDING\tLAG\tDEAD LETTERS")
	for _, p := range notification.Priorities {
		stream := keys.Stream(string(p))
		length, err := rdb.XLen(ctx, stream).Result()
		if err != nil {
			return fmt.Errorf("inspect %s: %w", stream, err)
		}
		dead, err := rdb.XLen(ctx, keys.DeadLetter(string(p))).Result()
		if err != nil {
			return fmt.Errorf("inspect %s: %w", keys.DeadLetter(string(p)), err)
		}
		groups, _ := rdb.XInfoGroups(ctx, stream).Result() // no stream yet: no groups
		if len(groups) == 0 {
			fmt.Fprintf(w, "%s\t%d\t-\t-\t-\t-\t%d\n", stream, length, dead)
		}
		for _, g := range groups {
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\t%d\n", stream, length, g.Name, g.Consumers, g.Pending, g.Lag, dead)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}

	counts, err := ds.Store.CountActive(ctx)
	if err != nil {
		return err
	}
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STATE\tNOTIFICATIONS")
	for _, s := range []notification.Status{notification.Scheduled, notification.Queued, notification.Sending, notification.Retrying} {
		fmt.Fprintf(w, "%s\t%d\n", s, counts[s])
	}
	return w.Flush()
}
