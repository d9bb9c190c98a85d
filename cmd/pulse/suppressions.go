package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
)

const suppressionsUsage = `usage: pulse suppressions list [flags]
       pulse suppressions remove [flags] CHANNEL ADDRESS

Run 'pulse suppressions list -h' or 'pulse suppressions remove -h' for details.`

const suppressionsExitCodes = `
Exit codes: 0 done, 1 error (ingest unreachable or failing, token refused), 2 usage,
3 nothing matched (no suppression listed, or the address was not suppressed).`

var suppressionsCommands = map[string]command{
	"list": {
		name: "suppressions list",
		about: `Lists the recipients Pulse no longer sends to, newest first: addresses, numbers and device
tokens a provider said do not exist or opted out. Notifications to them end failed with reason
suppressed, without calling the provider. Needs a token allowed every source (*).` + suppressionsExitCodes,
		env: []any{&config.Client{}},
	},
	"remove": {
		name: "suppressions remove",
		args: "CHANNEL ADDRESS",
		about: `Removes a suppression, so that the next notification to the address is sent again. Needs a
token allowed every source (*).` + suppressionsExitCodes,
		arguments: [][2]string{{"CHANNEL", "email, sms, push or webhook"},
			{"ADDRESS", "the address, number or device token, exactly as pulse suppressions list shows it"}},
		env: []any{&config.Client{}},
	},
}

// suppressionsCmd lists or removes suppressed recipients through ingest's API.
func suppressionsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError("%s", suppressionsUsage)
	}
	sub, args := args[0], args[1:]
	cmd, ok := suppressionsCommands[sub]
	if !ok {
		return usageError("unknown suppressions command %q\n\n%s", sub, suppressionsUsage)
	}
	fs := cmd.flagSet()
	cfg, err := clientConfig(fs)
	if err != nil {
		return err
	}
	output := fs.String("o", "table", "output format: table or json")
	var channel, address *string
	var limit *int
	if sub == "list" {
		channel = fs.String("channel", "", "only this channel: email, sms, push or webhook")
		address = fs.String("address", "", "only this address (with --channel)")
		limit = fs.Int("limit", 100, "at most this many, newest first (1 to 1000)")
	}
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usageError("-o %q: want table or json", *output)
	}
	c := newClient(cfg)

	if sub == "remove" {
		if fs.NArg() != 2 {
			return usageError("usage: pulse suppressions remove [flags] CHANNEL ADDRESS (pulse suppressions remove -h for help)")
		}
		var answer ingest.SuppressionRemoved
		err := c.do(ctx, http.MethodDelete, "/v1/suppressions/"+url.PathEscape(fs.Arg(0))+"/"+url.PathEscape(fs.Arg(1)), nil, &answer)
		var e *exitCodeError
		if errors.As(err, &e) && e.code == exitNoMatches {
			return &exitCodeError{code: exitNoMatches, err: fmt.Errorf("%s %s is not suppressed", fs.Arg(0), fs.Arg(1))}
		}
		if err != nil {
			return err
		}
		if *output == "json" {
			return writeJSON(stdout, answer)
		}
		_, err = fmt.Fprintf(stdout, "removed the %s suppression of %s: notifications to it are sent again\n", answer.Channel, answer.Address)
		return err
	}

	if fs.NArg() > 0 {
		return usageError("suppressions list: unexpected argument %q (pulse suppressions list -h for help)", fs.Arg(0))
	}
	q := url.Values{}
	if *channel != "" {
		q.Set("channel", *channel)
	}
	if *address != "" {
		q.Set("address", *address)
	}
	q.Set("limit", strconv.Itoa(*limit))
	var answer ingest.Suppressions
	if err := c.do(ctx, http.MethodGet, "/v1/suppressions?"+q.Encode(), nil, &answer); err != nil {
		return err
	}
	if *output == "json" {
		err = writeJSON(stdout, answer)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANNEL\tADDRESS\tSUPPRESSED AT\tCODE\tNOTIFICATION\tREASON")
		for _, s := range answer.Suppressions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Channel, s.Address.Address, s.CreatedAt.UTC().Format(time.RFC3339),
				s.ErrorCode, s.NotificationID, cut(oneLine(s.Reason), 60))
		}
		err = tw.Flush()
	}
	if err == nil && len(answer.Suppressions) == 0 {
		return errNothingMatched
	}
	return err
}
