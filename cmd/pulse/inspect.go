package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
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
	var cfg struct {
		config.Database
		config.Redis
	}
	fs := inspectCommand.flagSet()
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("inspect takes no arguments, got %q", fs.Args())
	}
	// The datastores pulse dev uses, unless the environment names others.
	if err := config.SetDefaults(devDefaults(datastoreVars...)); err != nil {
		return err
	}
	if err := config.Load(&cfg); err != nil {
		return err
	}
	rdb, err := queue.Open(cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	keys := queue.NewKeys(cfg.Prefix)
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

	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	counts, err := st.CountActive(ctx)
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
