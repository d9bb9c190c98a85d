package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

const billingSource = "urn:billing:invoices"

// poisons are requests PostgreSQL cannot store, each with the field a 400 must name.
var poisons = map[string]struct{ data, field string }{
	"invalid UTF-8 in data":     {"{\"channel\":\"webhook\",\"to\":\"https://h.example/in\",\"data\":{\"k\":\"\xff\"}}", "data.data.k"},
	"lone surrogate in data":    {`{"channel":"webhook","to":"https://h.example/in","data":{"items":[1,"\ud800"]}}`, "data.data.items[1]"},
	"number too large":          {`{"channel":"webhook","to":"https://h.example/in","data":{"n":1e1000000}}`, "data.data.n"},
	"number too small":          {`{"channel":"webhook","to":"https://h.example/in","data":{"n":1e-1000000}}`, "data.data.n"},
	"nul escape in data":        {`{"channel":"webhook","to":"https://h.example/in","data":{"k":"\u0000"}}`, "data.data.k"},
	"nul in body":               {`{"channel":"sms","to":"+15551234567","body":"a\u0000b"}`, "data.body"},
	"invalid UTF-8 in body":     {"{\"channel\":\"sms\",\"to\":\"+15551234567\",\"body\":\"a\xc3\"}", "data.body"},
	"invalid UTF-8 in subject":  {"{\"channel\":\"push\",\"to\":\"tok\",\"subject\":\"\xfe\",\"body\":\"b\"}", "data.subject"},
	"invalid UTF-8 in metadata": {"{\"channel\":\"sms\",\"to\":\"+15551234567\",\"body\":\"b\",\"metadata\":{\"k\":\"\xff\"}}", "data.metadata.k"},
	"surrogate in html":         {`{"channel":"email","to":"ada@example.com","subject":"s","html":"\udc00"}`, "data.html"},
}

// TestPoisonNeverFailsOthers: one tenant streams requests PostgreSQL cannot store while another
// sends 4,000 valid ones, singly and in batches, so that they share group-commit statements.
// Every valid request is answered 2xx, stored queued and enqueued; every poisoned one gets a
// 400 naming its field, and none is stored.
func TestPoisonNeverFailsOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		valid     = 4000
		batchSize = 20
		singles   = 1000 // the rest come in batches
		senders   = 8
	)
	type job struct{ ids []int }
	jobs := make(chan job)
	go func() {
		defer close(jobs)
		for i := 0; i < singles; i++ {
			jobs <- job{ids: []int{i}}
		}
		for i := singles; i < valid; i += batchSize {
			ids := make([]int, 0, batchSize)
			for k := i; k < min(i+batchSize, valid); k++ {
				ids = append(ids, k)
			}
			jobs <- job{ids: ids}
		}
	}()

	var wg sync.WaitGroup
	failures := make(chan string, valid)
	for range senders {
		wg.Go(func() {
			for j := range jobs {
				var resp *http.Response
				var err error
				if len(j.ids) == 1 {
					resp, err = send(b, shopToken, "application/json", webhookData(""), map[string]string{
						"Ce-Specversion": "1.0", "Ce-Id": fmt.Sprint("v-", j.ids[0]), "Ce-Source": shopSource,
						"Ce-Type": notification.TypeRequested})
				} else {
					ids := make([]string, len(j.ids))
					for k, id := range j.ids {
						ids[k] = fmt.Sprint("v-", id)
					}
					resp, err = send(b, shopToken, "application/cloudevents-batch+json", batch(shopSource, ids...), nil)
				}
				if err != nil {
					failures <- err.Error()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failures <- fmt.Sprintf("valid request %v: %d %s", j.ids, resp.StatusCode, body)
				}
			}
		})
	}

	// The poisoning tenant sends each kind of poison, over and over, alone and in batches,
	// until the valid traffic has all been answered.
	done := make(chan struct{})
	var poisonWG sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for w := range 2 {
		poisonWG.Go(func() {
			for round := 0; ; round++ {
				for name, p := range poisons {
					select {
					case <-done:
						return
					default:
					}
					id := fmt.Sprintf("p-%d-%d-%s", w, round, name)
					var resp *http.Response
					var err error
					want := p.field
					if round%2 == 0 {
						resp, err = send(b, billingToken, "application/json", p.data, map[string]string{
							"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": billingSource, "Ce-Type": notification.TypeRequested})
					} else {
						// Raw bytes, not %q: the poison must reach ingest as it is.
						ev := `{"specversion":"1.0","id":"` + id + `","source":"` + billingSource + `","type":"` + notification.TypeRequested + `","data":` + p.data + `}`
						ok := fmt.Sprintf(`{"specversion":"1.0","id":"%s-ok","source":%q,"type":%q,"data":%s}`, id, billingSource, notification.TypeRequested, webhookData(""))
						resp, err = send(b, billingToken, "application/cloudevents-batch+json", "["+ok+","+ev+"]", nil)
						want = "[1]." + want
					}
					if err != nil {
						failures <- err.Error()
						continue
					}
					var body ceserver.ErrorBody
					derr := json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					var fields []string
					for _, f := range body.Fields {
						fields = append(fields, f.Field)
					}
					if resp.StatusCode != http.StatusBadRequest || derr != nil || !contains(fields, want) {
						failures <- fmt.Sprintf("poison %q: %d, fields %v, want %s", name, resp.StatusCode, fields, want)
					}
					mu.Lock()
					sent++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(done)
	poisonWG.Wait()
	close(failures)
	var all []string
	for f := range failures {
		all = append(all, f)
	}
	require.Empty(t, all)
	require.Greater(t, sent, len(poisons), "every poison was sent")

	ctx := context.Background()
	var stored, queued, billing int
	require.NoError(t, b.store.Pool().QueryRow(ctx, `select count(*), count(*) filter (where status = 'queued'),
		(select count(*) from notifications where source = $2) from notifications where source = $1`,
		shopSource, billingSource).Scan(&stored, &queued, &billing))
	require.Equal(t, valid, stored)
	require.Equal(t, valid, queued)
	require.Zero(t, billing, "nothing of a poisoned request is stored, nor the rest of its batch")
	ids := streamIDs(t, b, "high")
	require.Len(t, ids, valid)

	// Every valid notification is delivered, once, through the deliver path: claimed and
	// recorded in PostgreSQL, handed to the webhook provider exactly once.
	sink := &countingProvider{sent: map[string]int{}}
	d := delivery.NewDeliverer(delivery.DelivererConfig{Store: b.store,
		Providers: map[notification.Channel]channel.Provider{notification.Webhook: sink},
		Logger:    slog.New(slog.DiscardHandler), Lease: time.Minute, SendTimeout: 10 * time.Second,
		Retry: config.Retry{Schedule: []time.Duration{time.Minute}}})
	var dwg sync.WaitGroup
	for w := range senders {
		dwg.Go(func() {
			for i := w; i < len(ids); i += senders {
				if err := d.Deliver(ctx, ids[i]); err != nil {
					t.Errorf("deliver %s: %v", ids[i], err)
				}
			}
		})
	}
	dwg.Wait()
	d.Close()
	var delivered int
	require.NoError(t, b.store.Pool().QueryRow(ctx, `select count(*) from notifications where source = $1 and status = 'delivered'`,
		shopSource).Scan(&delivered))
	require.Equal(t, valid, delivered)
	require.Len(t, sink.sent, valid)
	for id, n := range sink.sent {
		require.Equal(t, 1, n, "notification %s sent %d times", id, n)
	}
}

// countingProvider accepts every message and counts the sends of each notification.
type countingProvider struct {
	mu   sync.Mutex
	sent map[string]int
}

func (p *countingProvider) Send(_ context.Context, m channel.Message) channel.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[m.NotificationID]++
	return channel.Result{Outcome: channel.Delivered}
}

func contains(fields []string, want string) bool {
	for _, f := range fields {
		if f == want {
			return true
		}
	}
	return false
}

// send POSTs body with the given headers; it is safe to call from many goroutines.
func send(b *testBundle, token, contentType, body string, headers map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, b.url+"/", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return http.DefaultClient.Do(req)
}

// TestCommitIsolatesUnstorableRequests: a request whose value PostgreSQL refuses (one that got
// past validation) fails alone with the field named, while the requests sharing its statement
// are committed.
func TestCommitIsolatesUnstorableRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	logger := slog.New(slog.DiscardHandler)
	c := ingest.NewCommitter(b.store, queue.New(b.redis, b.keys, nil), logger, 1000, 1)
	c.Start()
	t.Cleanup(c.Stop)
	item := func(id string) store.NewNotification {
		return store.NewNotification{Source: shopSource, EventID: id, MaxAttempts: 3, Request: notification.Request{
			Channel: notification.Webhook, To: "https://hooks.example.com/in", Priority: notification.High,
			Data: json.RawMessage(`{"order":1}`)}}
	}
	bad := map[string]func(*store.NewNotification){
		"data.data": func(n *store.NewNotification) { n.Request.Data = json.RawMessage(`{"k":"\u0000"}`) },
		"data.to":   func(n *store.NewNotification) { n.Request.To = "https://h.example/\xff" },
		"data.body": func(n *store.NewNotification) { n.Request.Body = "a\x00b" },
		"id":        func(n *store.NewNotification) { n.EventID = "\xff" },
	}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 200 {
		wg.Go(func() {
			_, err := c.Commit(context.Background(), []store.NewNotification{item(fmt.Sprint("ok-", i, "a")), item(fmt.Sprint("ok-", i, "b"))})
			errs <- err
		})
	}
	for field, spoil := range bad {
		wg.Go(func() {
			n := item("bad-" + field)
			spoil(&n)
			_, err := c.Commit(context.Background(), []store.NewNotification{item("with-bad-" + field), n})
			var ie *store.InputError
			if !errors.As(err, &ie) || ie.Field != field {
				err = fmt.Errorf("bad %s: got %v", field, err)
			} else {
				err = nil
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 400, countRows(t, b), "the good requests are stored, no part of a bad one")
}
