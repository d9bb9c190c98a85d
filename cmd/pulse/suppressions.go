package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const suppressionsUsage = `usage: pulse suppressions list [--channel C] [--address A] [--limit N]
       pulse suppressions remove CHANNEL ADDRESS

Lists or removes the recipients Pulse no longer sends to because a provider said they do not
exist or opted out. Needs a token allowed every source (*).`

// suppressions lists or removes suppressed recipients through ingest's API.
func suppressions(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(suppressionsUsage)
	}
	fs := flag.NewFlagSet("suppressions "+args[0], flag.ContinueOnError)
	cfg, err := clientConfig(fs)
	if err != nil {
		return err
	}
	base := strings.TrimRight(cfg.URL, "/") + "/v1/suppressions"
	switch args[0] {
	case "list":
		channel := fs.String("channel", "", "only this channel: email, sms, push or webhook")
		address := fs.String("address", "", "only this address (with --channel)")
		limit := fs.Int("limit", 100, "at most this many, newest first (1 to 1000)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		q := url.Values{}
		if *channel != "" {
			q.Set("channel", *channel)
		}
		if *address != "" {
			q.Set("address", *address)
		}
		q.Set("limit", strconv.Itoa(*limit))
		hr, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		return do(hr, cfg.Token)
	case "remove":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return errors.New(suppressionsUsage)
		}
		hr, err := http.NewRequestWithContext(ctx, http.MethodDelete,
			base+"/"+url.PathEscape(fs.Arg(0))+"/"+url.PathEscape(fs.Arg(1)), nil)
		if err != nil {
			return err
		}
		return do(hr, cfg.Token)
	}
	return errors.New(suppressionsUsage)
}
