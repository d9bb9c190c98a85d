package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pulse-knative/pulse/pkg/config"
)

// command is what `pulse <name> -h` says about a command.
type command struct {
	// name and args make the synopsis: "pulse get [flags] ID".
	name, args string
	// about says what the command does, in a few lines.
	about string
	// arguments explains each argument, in order: {"ID", "the notification's id"}.
	arguments [][2]string
	// env are the configuration structs whose variables the command reads.
	env []any
	// defaults are the values the command uses for variables the environment does not set,
	// when they differ from the structs' own defaults; secret ones are named, not shown.
	defaults map[string]string
	// set are variables of env the command sets itself, left out of the help.
	set []string
}

// flagSet returns a flag set for the command whose -h prints the command's help.
func (c command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.Usage = func() { c.usage(fs.Output(), fs) }
	return fs
}

// parseNoArgs parses args for a command that takes flags at most (-h among them) and refuses
// any argument, as a usage error.
func (c command) parseNoArgs(args []string) error {
	fs := c.flagSet()
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("%s takes no arguments, got %q", c.name, fs.Args())
	}
	return nil
}

// usage writes the command's help: synopsis, arguments, flags and environment variables.
func (c command) usage(w io.Writer, fs *flag.FlagSet) {
	synopsis := "pulse " + c.name
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		synopsis += " [flags]"
	}
	if c.args != "" {
		synopsis += " " + c.args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, strings.TrimSpace(c.about))
	if len(c.arguments) > 0 {
		fmt.Fprintln(w, "\nArguments:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range c.arguments {
			fmt.Fprintf(tw, "  %s\t%s\n", a[0], a[1])
		}
		tw.Flush()
	}
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	vars, err := config.Variables(c.env...)
	if err != nil {
		fmt.Fprintf(w, "\n%v\n", err)
		return
	}
	if len(vars) == 0 {
		return
	}
	fmt.Fprintln(w, "\nEnvironment:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range vars {
		if slices.Contains(c.set, v.Name) {
			continue
		}
		def := v.Default
		if d, ok := c.defaults[v.Name]; ok {
			def = d
		}
		switch {
		case def != "":
			fmt.Fprintf(tw, "  %s\tdefault %s\n", v.Name, def)
		case v.Required:
			fmt.Fprintf(tw, "  %s\trequired\n", v.Name)
		default:
			fmt.Fprintf(tw, "  %s\t\n", v.Name)
		}
	}
	tw.Flush()
}

// localDefaults are devDefaults as help shows them: the development signing secret is named,
// not printed.
func localDefaults(names ...string) map[string]string {
	out := devDefaults(names...)
	for k := range out {
		if strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN") {
			out[k] = "(a fixed development value)"
		}
	}
	return out
}
