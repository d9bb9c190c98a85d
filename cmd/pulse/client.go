package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// clientConfig loads the configuration of the commands that talk to ingest, with flags that
// override it.
func clientConfig(fs *flag.FlagSet) (*config.Client, error) {
	var cfg config.Client
	if err := config.Load(&cfg); err != nil {
		return nil, err
	}
	fs.StringVar(&cfg.URL, "url", cfg.URL, "ingest's base URL (PULSE_URL)")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "bearer token (PULSE_TOKEN)")
	return &cfg, nil
}

// send asks ingest for one notification and prints its answer.
var sendCommand = command{
	name: "send",
	about: `Asks ingest for one notification, as an upstream system would (a CloudEvent of type
dev.pulse.notification.requested), and prints ingest's answer. Repeat an --id to see that a
repeated request gets the first one's answer.`,
	env: []any{&config.Client{}},
}

func send(ctx context.Context, args []string) error {
	fs := sendCommand.flagSet()
	cfg, err := clientConfig(fs)
	if err != nil {
		return err
	}
	var (
		req         notification.Request
		channel     = fs.String("channel", "webhook", "email, sms, push or webhook")
		data        = fs.String("data", "", `push or webhook payload, a JSON object; push: {"data":{"k":"v"},"android":{…},"apns":{…},"webpush":{…}}`)
		priority    = fs.String("priority", "high", "high or low")
		sendAt      = fs.String("send-at", "", "RFC 3339 time to send at, or a delay such as 30s")
		source      = fs.String("source", "urn:pulse:cli", "CloudEvent source")
		id          = fs.String("id", "", "CloudEvent id (default: random); repeat one to see idempotency")
		maxAttempts = fs.Int("max-attempts", 0, "attempts before giving up (default: the retry schedule's)")
	)
	fs.StringVar(&req.To, "to", "", "recipient: address, phone number, device token or URL")
	fs.StringVar(&req.Subject, "subject", "", "subject: the email's subject, the push message's title")
	fs.StringVar(&req.Body, "text", "", "plain-text body: the email's text part, the SMS text, the push message's body")
	fs.StringVar(&req.Body, "body", "", "the same as --text")
	fs.StringVar(&req.HTML, "html", "", "HTML body (email)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("send takes flags only, got %q (pulse send -h for help)", fs.Args())
	}
	req.Channel, req.Priority, req.MaxAttempts = notification.Channel(*channel), notification.Priority(*priority), *maxAttempts
	if *data != "" {
		if !json.Valid([]byte(*data)) {
			return errors.New("--data is not valid JSON")
		}
		req.Data = json.RawMessage(*data)
	}
	if *sendAt != "" {
		t, err := time.Parse(time.RFC3339, *sendAt)
		if err != nil {
			d, derr := time.ParseDuration(*sendAt)
			if derr != nil {
				return fmt.Errorf("--send-at %q: want an RFC 3339 time or a delay such as 30s", *sendAt)
			}
			t = time.Now().Add(d)
		}
		req.SendAt = &t
	}
	if *id == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		*id = hex.EncodeToString(b)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.URL, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Ce-Specversion", "1.0")
	hr.Header.Set("Ce-Id", *id)
	hr.Header.Set("Ce-Source", *source)
	hr.Header.Set("Ce-Type", notification.TypeRequested)
	return do(hr, cfg.Token)
}

// get prints a notification, its state and its delivery attempts.
var getCommand = command{
	name: "get",
	args: "ID",
	about: `Shows a notification through ingest's status API: its state, its attempts, its
timestamps and its last error.`,
	arguments: [][2]string{{"ID", "the notification's id, as ingest's answer to the request gives it"}},
	env:       []any{&config.Client{}},
}

func get(ctx context.Context, args []string) error {
	fs := getCommand.flagSet()
	cfg, err := clientConfig(fs)
	if err != nil {
		return err
	}
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: pulse get [flags] ID (pulse get -h for help)")
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.URL, "/")+"/v1/notifications/"+fs.Arg(0), nil)
	if err != nil {
		return err
	}
	return do(hr, cfg.Token)
}

// do sends hr and prints the answer's status and indented JSON body.
func do(hr *http.Request, token string) error {
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return fmt.Errorf("%s %s: %w", hr.Method, hr.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Println(resp.Status)
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") == nil {
		body = out.Bytes()
	}
	os.Stdout.Write(append(bytes.TrimSpace(body), '\n'))
	if resp.StatusCode >= 400 {
		return fmt.Errorf("ingest answered %s", resp.Status)
	}
	return nil
}

// migrateCmd applies the database migrations.
var migrateCommand = command{
	name: "migrate",
	about: `Applies the database migrations, for deployments that set PULSE_DATABASE_MIGRATE=false
on the functions. Without PULSE_DATABASE_URL it migrates the local database pulse dev uses.`,
	env:      []any{&config.Database{}},
	defaults: localDefaults("PULSE_DATABASE_URL"),
	set:      []string{"PULSE_DATABASE_MIGRATE"},
}

func migrateCmd(ctx context.Context, args []string) error {
	if err := migrateCommand.parseNoArgs(args); err != nil {
		return err
	}
	var cfg config.Database
	if err := loadLocal(&cfg, "PULSE_DATABASE_URL"); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	fmt.Println("migrations applied")
	return nil
}
