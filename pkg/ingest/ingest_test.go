package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

const (
	shopToken    = "tok-shop"
	billingToken = "tok-billing"
	shopSource   = "https://shop.example.com/orders"
)

type testBundle struct {
	url   string
	store *store.Store
	redis *redis.Client
	keys  queue.Keys
}

func testConfig() config.Ingest {
	var cfg config.Ingest
	if err := config.Load(&cfg); err == nil {
		panic("config without required variables loaded")
	}
	cfg.Auth = "token"
	cfg.Tokens = config.Tokens{shopToken: {"https://shop.example.com/"}, billingToken: {"urn:billing"}}
	cfg.MaxRequestBytes = 64 << 10
	cfg.MaxBatch = 1000
	cfg.Retry.Schedule = []time.Duration{time.Second, 2 * time.Second}
	return cfg
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	return setupWith(t, pulsetest.DatabaseURL(t))
}

func setupWith(t testing.TB, dbURL string) *testBundle {
	t.Helper()
	return setupConfig(t, dbURL, testConfig())
}

func setupConfig(t testing.TB, dbURL string, cfg config.Ingest) *testBundle {
	t.Helper()
	srv := testfactory.Ingest(t, cfg, testfactory.IngestOpts{DatabaseURL: dbURL, NoMigrate: strings.Contains(dbURL, "127.0.0.1:1/")})
	return &testBundle{url: srv.URL, store: srv.Store, redis: srv.Redis, keys: srv.Keys}
}

func webhookData(extra string) string {
	return `{"channel":"webhook","to":"https://hooks.example.com/in","data":{"order":7}` + extra + `}`
}

// batch returns an application/cloudevents-batch+json body that asks for one webhook per id,
// from source.
func batch(source string, ids ...string) string {
	events := make([]string, len(ids))
	for i, id := range ids {
		events[i] = fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q,"data":%s}`,
			id, source, notification.TypeRequested, webhookData(""))
	}
	return "[" + strings.Join(events, ",") + "]"
}

// postBinary sends a binary-mode CloudEvent.
func postBinary(t *testing.T, b *testBundle, token, source, id, typ, data string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+"/", strings.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", source)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func post(t *testing.T, b *testBundle, token, contentType, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+"/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

func streamIDs(t *testing.T, b *testBundle, priority string) []string {
	t.Helper()
	msgs, err := b.redis.XRange(context.Background(), b.keys.Stream(priority), "-", "+").Result()
	require.NoError(t, err)
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Values[queue.FieldNotificationID].(string))
	}
	return ids
}

func countRows(t *testing.T, b *testBundle) int {
	t.Helper()
	var n int
	require.NoError(t, b.store.Pool().QueryRow(context.Background(), "select count(*) from notifications").Scan(&n))
	return n
}

func TestBinaryEventAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := postBinary(t, b, shopToken, shopSource, "evt-1", "dev.pulse.notification.requested", webhookData(`,"metadata":{"k":"v"}`))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	reply, err := cehttp.NewEventFromHTTPResponse(resp)
	require.NoError(t, err, "the answer is a binary-mode CloudEvent")
	require.NoError(t, reply.Validate())
	resp.Body = io.NopCloser(bytes.NewReader(reply.Data()))
	require.Equal(t, "dev.pulse.notification.accepted", resp.Header.Get("Ce-Type"))
	a := decode[ingest.Answer](t, resp)
	require.Equal(t, "queued", string(a.Status))
	require.Equal(t, a.ID, resp.Header.Get("Ce-Id"))
	require.False(t, a.Duplicate)

	n, err := b.store.Get(context.Background(), a.ID)
	require.NoError(t, err)
	require.Equal(t, shopSource, n.Source)
	require.Equal(t, "evt-1", n.EventID)
	require.Equal(t, "https://hooks.example.com/in", n.To)
	require.Equal(t, 3, n.MaxAttempts, "default attempts: schedule length + 1")
	require.Equal(t, []string{a.ID}, streamIDs(t, b, "high"))
}

func TestStructuredEventAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := fmt.Sprintf(`{"specversion":"1.0","id":"s-1","source":%q,"type":"dev.pulse.notification.requested",
		"datacontenttype":"application/json","data":%s}`, shopSource, webhookData(`,"priority":"low"`))
	resp := post(t, b, shopToken, "application/cloudevents+json", body)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	a := decode[ingest.Answer](t, resp)
	require.Equal(t, "low", string(a.Priority))
	require.Equal(t, []string{a.ID}, streamIDs(t, b, "low"))
	require.Empty(t, streamIDs(t, b, "high"))
}

func TestBatchAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The same event twice in one batch is one notification.
	resp := post(t, b, shopToken, "application/cloudevents-batch+json", batch(shopSource, "b-0", "b-1", "b-2", "b-0"))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "application/cloudevents-batch+json", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var parsed []event.Event
	require.NoError(t, json.Unmarshal(body, &parsed), "the reply is a batch of CloudEvents")
	for _, e := range parsed {
		require.NoError(t, e.Validate())
	}
	var replies []struct {
		Type string        `json:"type"`
		Data ingest.Answer `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &replies))
	require.Len(t, replies, 4)
	require.Equal(t, "dev.pulse.notification.accepted", replies[0].Type)
	require.Equal(t, replies[0].Data.ID, replies[3].Data.ID)
	require.True(t, replies[3].Data.Duplicate)
	require.Equal(t, 3, countRows(t, b))
	require.Len(t, streamIDs(t, b, "high"), 3)
}

func TestRepeatReturnsFirstAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := decode[ingest.Answer](t, postBinary(t, b, shopToken, shopSource, "dup", "dev.pulse.notification.requested", webhookData("")))
	resp := postBinary(t, b, shopToken, shopSource, "dup", "dev.pulse.notification.requested", webhookData(`,"priority":"low"`))
	require.Equal(t, http.StatusOK, resp.StatusCode, "a repeat is 2xx, never 409")
	again := decode[ingest.Answer](t, resp)
	// The first answer, created_at to the nanosecond as written, but for the flag: the repeat's
	// own data (priority low) changes nothing.
	want := first
	want.Duplicate = true
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("repeat's answer (-want +got):\n%s", diff)
	}
	require.Equal(t, first.CreatedAt.Format(time.RFC3339Nano), again.CreatedAt.Format(time.RFC3339Nano), "created_at as first written")
	require.Equal(t, 1, countRows(t, b))
	require.Equal(t, []string{first.ID}, streamIDs(t, b, "high"), "a repeat is not enqueued again")

	// Once the notification moved on, a repeat says where it is now; the rest stays the first
	// answer.
	_, err := b.store.Cancel(t.Context(), first.ID)
	require.NoError(t, err)
	later := decode[ingest.Answer](t, postBinary(t, b, shopToken, shopSource, "dup", "dev.pulse.notification.requested", webhookData("")))
	want.Status = notification.Cancelled
	if diff := cmp.Diff(want, later); diff != "" {
		t.Errorf("repeat's answer after a cancel (-want +got):\n%s", diff)
	}
	require.Equal(t, first.CreatedAt.Format(time.RFC3339Nano), later.CreatedAt.Format(time.RFC3339Nano), "created_at as first written")
}

func TestInvalidFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, tc := range map[string]struct {
		typ    string
		data   string
		fields []string
	}{
		"wrong type":            {"dev.pulse.other", webhookData(""), []string{"type"}},
		"not an object":         {"", `[1,2]`, []string{"data"}},
		"missing channel":       {"", `{"to":"x"}`, []string{"data.channel"}},
		"unknown channel":       {"", `{"channel":"fax","to":"x"}`, []string{"data.channel"}},
		"unknown field":         {"", webhookData(`,"colour":"red"`), []string{"data.colour"}},
		"bad email":             {"", `{"channel":"email","to":"not-an-address","subject":"s","body":"b"}`, []string{"data.to"}},
		"email without subject": {"", `{"channel":"email","to":"ada@example.com","body":"b"}`, []string{"data.subject"}},
		"email without body":    {"", `{"channel":"email","to":"ada@example.com","subject":"s"}`, []string{"data.body", "data.html"}},
		"header injection":      {"", `{"channel":"email","to":"ada@example.com","subject":"a\r\nBcc: x@y.z","body":"b"}`, []string{"data.subject"}},
		"bad phone":             {"", `{"channel":"sms","to":"555-1234","body":"hi"}`, []string{"data.to"}},
		"sms too long":          {"", `{"channel":"sms","to":"+15551234567","body":"` + strings.Repeat("x", 1601) + `"}`, []string{"data.body"}},
		"sms with html":         {"", `{"channel":"sms","to":"+15551234567","body":"hi","html":"<b>"}`, []string{"data.html"}},
		"bad url":               {"", `{"channel":"webhook","to":"ftp://x","data":{}}`, []string{"data.to"}},
		"webhook data array":    {"", `{"channel":"webhook","to":"https://x.example","data":[1]}`, []string{"data.data"}},
		"bad priority":          {"", webhookData(`,"priority":"urgent"`), []string{"data.priority"}},
		"bad send_at":           {"", webhookData(`,"send_at":"tomorrow"`), []string{"data.send_at"}},
		"expired":               {"", webhookData(`,"expires_at":"2001-01-01T00:00:00Z"`), []string{"data.expires_at"}},
		"max_attempts range":    {"", webhookData(`,"max_attempts":0`), []string{"data.max_attempts"}},
		"max_attempts type":     {"", webhookData(`,"max_attempts":"3"`), []string{"data.max_attempts"}},
		"metadata type":         {"", webhookData(`,"metadata":{"n":1}`), []string{"data.metadata"}},
		"nul in body":           {"", `{"channel":"sms","to":"+15551234567","body":"a\u0000b"}`, []string{"data.body"}},
		"nul in data":           {"", `{"channel":"webhook","to":"https://h.example","data":{"k":"\u0000"}}`, []string{"data.data.k"}},
		"nul in metadata":       {"", webhookData(`,"metadata":{"k":"\u0000"}`), []string{"data.metadata.k"}},
		"several at once":       {"", `{"channel":"sms","to":"x","body":"","priority":"mid"}`, []string{"data.to", "data.body", "data.priority"}},
	} {
		t.Run(name, func(t *testing.T) {
			typ := tc.typ
			if typ == "" {
				typ = "dev.pulse.notification.requested"
			}
			resp := postBinary(t, b, shopToken, shopSource, "bad-"+name, typ, tc.data)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			body := decode[ceserver.ErrorBody](t, resp)
			var got []string
			for _, f := range body.Fields {
				got = append(got, f.Field)
			}
			require.ElementsMatch(t, tc.fields, got, "fields named: %+v", body.Fields)
		})
	}
	require.Equal(t, 0, countRows(t, b))
	require.Empty(t, streamIDs(t, b, "high"))
}

func TestBatchErrorsNameTheEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := fmt.Sprintf(`{"specversion":"1.0","id":"g","source":%q,"type":"dev.pulse.notification.requested","data":%s}`, shopSource, webhookData(""))
	bad := fmt.Sprintf(`{"specversion":"1.0","id":"b","source":%q,"type":"dev.pulse.notification.requested","data":{"channel":"sms","to":"1","body":"x"}}`, shopSource)
	resp := post(t, b, shopToken, "application/cloudevents-batch+json", "["+good+","+bad+"]")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	body := decode[ceserver.ErrorBody](t, resp)
	require.Len(t, body.Fields, 1)
	require.Equal(t, "[1].data.to", body.Fields[0].Field)
	require.Equal(t, 0, countRows(t, b), "a batch is stored whole or not at all")
}

func TestMissingEventAttributes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := postBinary(t, b, shopToken, shopSource, "", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp = post(t, b, shopToken, "application/json", webhookData(""))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a plain JSON body is not a CloudEvent")
}

func TestEventKeyBounds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := postBinary(t, b, shopToken, shopSource, strings.Repeat("i", 600), "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "id", decode[ceserver.ErrorBody](t, resp).Fields[0].Field)
	resp = postBinary(t, b, shopToken, shopSource+"/"+strings.Repeat("s", 1100), "long-source", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "source", decode[ceserver.ErrorBody](t, resp).Fields[0].Field)
	require.Equal(t, 0, countRows(t, b))
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := postBinary(t, b, "", shopSource, "a1", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
	resp = postBinary(t, b, "nope", shopSource, "a2", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = postBinary(t, b, billingToken, shopSource, "a3", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, 0, countRows(t, b))

	resp = postBinary(t, b, billingToken, "urn:billing:invoices", "a4", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := webhookData(`,"body":"` + strings.Repeat("x", 70<<10) + `"`)
	resp := postBinary(t, b, shopToken, shopSource, "big", "dev.pulse.notification.requested", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, 0, countRows(t, b))
}

func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every connection is refused.
	b := setupWith(t, "postgres://root@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	resp := postBinary(t, b, shopToken, shopSource, "down", "dev.pulse.notification.requested", webhookData(""))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Empty(t, streamIDs(t, b, "high"))
}

func TestStatusAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := decode[ingest.Answer](t, postBinary(t, b, shopToken, shopSource, "st-1", "dev.pulse.notification.requested", webhookData("")))

	resp := get(t, b, shopToken, "/v1/notifications/"+a.ID)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	st := decode[ingest.Status](t, resp)
	require.Equal(t, a.ID, st.ID)
	require.Equal(t, "queued", string(st.Status))
	require.Empty(t, st.DeliveryAttempts)

	resp = get(t, b, shopToken, "/v1/notifications?source="+shopSource+"&id=st-1")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, a.ID, decode[ingest.Status](t, resp).ID)

	require.Equal(t, http.StatusNotFound, get(t, b, billingToken, "/v1/notifications/"+a.ID).StatusCode, "another source's notification is not shown")
	require.Equal(t, http.StatusNotFound, get(t, b, shopToken, "/v1/notifications/not-a-uuid").StatusCode)
	// id without source is a lookup missing its source; source alone is a list filter.
	require.Equal(t, http.StatusBadRequest, get(t, b, shopToken, "/v1/notifications?id=st-1").StatusCode)
	resp = get(t, b, shopToken, "/v1/notifications?source=x")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, decode[ingest.Page](t, resp).Notifications)
	require.Equal(t, http.StatusUnauthorized, get(t, b, "", "/v1/notifications/"+a.ID).StatusCode)
}

func TestConcurrentRequestsShareCommits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, b.url+"/", strings.NewReader(webhookData("")))
			req.Header.Set("Ce-Specversion", "1.0")
			req.Header.Set("Ce-Id", fmt.Sprint("c-", i%150)) // 50 repeats among them
			req.Header.Set("Ce-Source", shopSource)
			req.Header.Set("Ce-Type", "dev.pulse.notification.requested")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+shopToken)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	require.Equal(t, 150, countRows(t, b))
	require.Len(t, streamIDs(t, b, "high"), 150)
}

// FuzzReceive posts arbitrary bodies and attributes: bad input is never a 5xx and never a
// panic.
func FuzzReceive(f *testing.F) {
	f.Add("application/json", "dev.pulse.notification.requested", webhookData(""))
	f.Add("application/json", "dev.pulse.notification.requested", `{"channel":"email","to":"a@b.co","subject":"s","html":"<p>"}`)
	f.Add("application/cloudevents+json", "", `{"specversion":"1.0","id":"1","source":"x","type":"t","data":1}`)
	f.Add("application/cloudevents-batch+json", "", `[{"specversion":"1.0"}]`)
	f.Add("application/json", "dev.pulse.notification.requested", `{"channel":"sms","to":"+1555000000","body":"\u0000","metadata":{"":""}}`)
	f.Add("text/plain", "x", "\xff\xfe")
	f.Add("application/json", "dev.pulse.notification.requested", `{"channel":"sms","to":"+15551234567","body":"\u0000"}`)
	f.Add("application/json", "dev.pulse.notification.requested", `{"channel":"webhook","to":"https://h.example","data":{"\u0000":1}}`)
	f.Add("application/cloudevents+json", "", `{"specversion":"1.0","id":"\u0000","source":"x","type":"dev.pulse.notification.requested","data":{}}`)
	for _, p := range poisons {
		f.Add("application/json", "dev.pulse.notification.requested", p.data)
		f.Add("application/cloudevents+json", "", `{"specversion":"1.0","id":"p","source":"`+shopSource+`","type":"dev.pulse.notification.requested","data":`+p.data+`}`)
	}
	b := setup(f)
	f.Fuzz(func(t *testing.T, contentType, typ, body string) {
		req, err := http.NewRequest(http.MethodPost, b.url+"/", bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+shopToken)
		if typ != "" {
			req.Header.Set("Ce-Specversion", "1.0")
			req.Header.Set("Ce-Id", pulsetest.Name("f"))
			req.Header.Set("Ce-Source", shopSource)
			req.Header.Set("Ce-Type", typ)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil && strings.Contains(err.Error(), "invalid header field") {
			return // the client will not send such a request at all
		}
		require.NoError(t, err)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 500, "body %q", body)
	})
}

// TestBatchWithCharsetAccepted: a batch content type with parameters is a batch all the same.
func TestBatchWithCharsetAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := post(t, b, shopToken, "application/cloudevents-batch+json; charset=utf-8", batch(shopSource, "cs-0", "cs-1"))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "application/cloudevents-batch+json", resp.Header.Get("Content-Type"))
	require.Equal(t, 2, countRows(t, b))
}

// TestDeclaredTooLarge: a Content-Length over PULSE_INGEST_MAX_REQUEST_BYTES is refused before
// any of the body is read; the client has sent none of it.
func TestDeclaredTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: pulse\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n", shopToken, 64<<10+1)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "an answer without sending the body")
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, 0, countRows(t, b))
}
