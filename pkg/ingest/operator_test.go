package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// row is one notification of the operator tests' data set.
type row struct {
	source    string
	channel   notification.Channel
	priority  notification.Priority
	status    notification.Status
	lastError string
}

// fixture stores rows, created one minute apart from base in the order given, and returns
// their ids by name.
func fixture(t *testing.T, b *testBundle, base time.Time, rows map[string]row, order []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	for i, name := range order {
		r := rows[name]
		to := map[notification.Channel]string{notification.Webhook: "https://hooks.example.com/in",
			notification.Email: "a@example.com", notification.SMS: "+15550100", notification.Push: "device-token"}[r.channel]
		acc, err := b.store.Insert(ctx, []store.NewNotification{{Source: r.source, EventID: name, MaxAttempts: 3,
			Request: notification.Request{Channel: r.channel, To: to, Priority: r.priority, Body: "secret body"}}})
		require.NoError(t, err)
		ids[name] = acc[0].ID
		_, err = b.store.Pool().Exec(ctx, `update notifications set status = $2::text, last_error = $3, created_at = $4::timestamptz,
			attempts = case when $2::text in ('failed', 'delivered') then 3 else 0 end,
			finished_at = case when $2::text in ('failed', 'delivered', 'expired', 'cancelled') then $4::timestamptz end
			where id = $1`, acc[0].ID, string(r.status), r.lastError, base.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
	}
	return ids
}

func get(t *testing.T, b *testBundle, token, target string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+target, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func operatorRows() (map[string]row, []string) {
	rows := map[string]row{
		"a1": {shopSource, notification.Webhook, notification.High, notification.Failed, "dial tcp: connection refused"},
		"a2": {shopSource, notification.Email, notification.Low, notification.Delivered, ""},
		"a3": {"https://shop.example.com/refunds", notification.SMS, notification.High, notification.Queued, ""},
		"a4": {shopSource, notification.Webhook, notification.Low, notification.Expired, "HTTP 503 Service Unavailable"},
		"b1": {"urn:billing:invoices", notification.Webhook, notification.High, notification.Failed, "dial tcp: connection refused"},
		// Starts with the shop token's prefix without its slash: not the shop's.
		"c1": {"https://shop.example.com.evil.example/x", notification.Webhook, notification.High, notification.Failed, "connection refused"},
	}
	return rows, []string{"a1", "a2", "a3", "a4", "b1", "c1"}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rows, order := operatorRows()
	ids := fixture(t, b, base, rows, order)
	name := map[string]string{}
	for n, id := range ids {
		name[id] = n
	}

	tests := map[string]struct {
		token string
		query url.Values
		want  []string
	}{
		"everything the token may see": {shopToken, nil, []string{"a4", "a3", "a2", "a1"}},
		"other token's prefix":         {billingToken, nil, []string{"b1"}},
		"status":                       {shopToken, url.Values{"status": {"failed"}}, []string{"a1"}},
		"several statuses":             {shopToken, url.Values{"status": {"failed,expired"}}, []string{"a4", "a1"}},
		"channel":                      {shopToken, url.Values{"channel": {"webhook"}}, []string{"a4", "a1"}},
		"priority":                     {shopToken, url.Values{"priority": {"low"}}, []string{"a4", "a2"}},
		"source":                       {shopToken, url.Values{"source": {"https://shop.example.com/refunds"}}, []string{"a3"}},
		"source of another token":      {shopToken, url.Values{"source": {"urn:billing:invoices"}}, nil},
		"since":                        {shopToken, url.Values{"since": {base.Add(2 * time.Minute).Format(time.RFC3339)}}, []string{"a4", "a3"}},
		"until":                        {shopToken, url.Values{"until": {base.Add(2 * time.Minute).Format(time.RFC3339)}}, []string{"a2", "a1"}},
		"since and until":              {shopToken, url.Values{"since": {base.Add(time.Minute).Format(time.RFC3339)}, "until": {base.Add(3 * time.Minute).Format(time.RFC3339)}}, []string{"a3", "a2"}},
		"error ignores case":           {shopToken, url.Values{"error": {"REFUSED"}}, []string{"a1"}},
		"error with LIKE characters":   {shopToken, url.Values{"error": {"50%"}}, nil},
		"error and status":             {shopToken, url.Values{"error": {"503"}, "status": {"expired"}}, []string{"a4"}},
		"everything combined":          {shopToken, url.Values{"status": {"failed"}, "channel": {"webhook"}, "priority": {"high"}, "source": {shopSource}, "error": {"refused"}}, []string{"a1"}},
	}
	for name_, tt := range tests {
		t.Run(name_, func(t *testing.T) {
			t.Parallel()
			resp := get(t, b, tt.token, "/v1/notifications?"+tt.query.Encode())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			page := decode[ingest.Page](t, resp)
			var got []string
			for _, n := range page.Notifications {
				got = append(got, name[n.ID])
				require.Empty(t, n.Body, "a list never shows bodies")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("notifications (-want +got):\n%s", diff)
			}
			require.Empty(t, page.NextCursor)
		})
	}
}

func TestListBadParameters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := map[string]struct {
		query string
		field string
	}{
		"unknown status":     {"status=done", "status"},
		"unknown channel":    {"channel=fax", "channel"},
		"unknown priority":   {"priority=urgent", "priority"},
		"since not RFC 3339": {"since=yesterday", "since"},
		"until before since": {"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"},
		"limit zero":         {"limit=0", "limit"},
		"limit over max":     {"limit=501", "limit"},
		"limit not a number": {"limit=ten", "limit"},
		"short error":        {"error=ab", "error"},
		"forged cursor":      {"cursor=bm90LWEtY3Vyc29y", "cursor"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			resp := get(t, b, shopToken, "/v1/notifications?"+tt.query)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			body := decode[ceserver.ErrorBody](t, resp)
			require.NotEmpty(t, body.Fields)
			require.Equal(t, tt.field, body.Fields[0].Field)
		})
	}
	resp := get(t, b, "wrong", "/v1/notifications")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestListLookupBySourceAndID: with both source and id the list is still the lookup of one
// notification by the CloudEvent that asked for it.
func TestListLookupBySourceAndID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows, order := operatorRows()
	ids := fixture(t, b, time.Now().UTC(), rows, order)
	resp := get(t, b, shopToken, "/v1/notifications?"+url.Values{"source": {shopSource}, "id": {"a2"}}.Encode())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ids["a2"], decode[ingest.Status](t, resp).ID)
}

// TestListPagesWhileInserting pages through the list with small pages while notifications are
// inserted: no page skips or repeats a row.
func TestListPagesWhileInserting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insert := func(prefix string, n int) []string {
		var ids []string
		for i := range n {
			acc, err := b.store.Insert(ctx, []store.NewNotification{{Source: shopSource, EventID: fmt.Sprintf("%s-%d", prefix, i), MaxAttempts: 3,
				Request: notification.Request{Channel: notification.Webhook, To: "https://hooks.example.com/in", Priority: notification.High}}})
			require.NoError(t, err)
			ids = append(ids, acc[0].ID)
		}
		return ids
	}
	before := insert("before", 120)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			insert(fmt.Sprintf("during-%d", i), 1)
		}
	})
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		resp := get(t, b, shopToken, "/v1/notifications?limit=7&cursor="+url.QueryEscape(cursor))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		page := decode[ingest.Page](t, resp)
		for _, n := range page.Notifications {
			seen[n.ID]++
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	close(done)
	wg.Wait()
	for id, n := range seen {
		require.Equal(t, 1, n, "notification %s listed %d times", id, n)
	}
	for _, id := range before {
		require.Contains(t, seen, id, "a notification stored before paging began was skipped")
	}
}

func bulk(t *testing.T, b *testBundle, token, path string, req ingest.BulkRequest) (int, ingest.BulkAnswer, string) {
	t.Helper()
	body, err := json.Marshal(req)
	require.NoError(t, err)
	hr, err := http.NewRequest(http.MethodPost, b.url+path, strings.NewReader(string(body)))
	require.NoError(t, err)
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	var raw json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	var a ingest.BulkAnswer
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a, string(raw)
}

func statuses(t *testing.T, b *testBundle) map[string]notification.Status {
	t.Helper()
	rows, err := b.store.Pool().Query(context.Background(), "select id::text, status from notifications")
	require.NoError(t, err)
	out := map[string]notification.Status{}
	for rows.Next() {
		var id string
		var s notification.Status
		require.NoError(t, rows.Scan(&id, &s))
		out[id] = s
	}
	require.NoError(t, rows.Err())
	return out
}

func TestRetryDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows, order := operatorRows()
	fixture(t, b, time.Now().UTC(), rows, order)
	before := statuses(t, b)
	code, a, raw := bulk(t, b, shopToken, "/v1/notifications:retry", ingest.BulkRequest{Filter: ingest.Filter{Channel: "webhook"}, DryRun: true})
	require.Equal(t, http.StatusOK, code, raw)
	require.Equal(t, int64(2), a.Matched, "a1 (failed) and a4 (expired); not b1 or c1, another token's")
	require.Zero(t, a.Moved)
	if diff := cmp.Diff(before, statuses(t, b)); diff != "" {
		t.Errorf("statuses after a dry run (-want +got):\n%s", diff)
	}
	require.Empty(t, streamIDs(t, b, "high"))
	require.Empty(t, streamIDs(t, b, "low"))
}

// TestRetryTwiceAtOnce replays the same failed set from two callers at once, in small
// batches: each notification moves and is enqueued exactly once.
func TestRetryTwiceAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows := map[string]row{}
	var order []string
	for i := range 60 {
		name := fmt.Sprintf("n%02d", i)
		st := notification.Failed
		if i%10 == 0 {
			st = notification.Delivered
		}
		rows[name] = row{shopSource, notification.Webhook, notification.High, st, "HTTP 500 from the receiver"}
		order = append(order, name)
	}
	ids := fixture(t, b, time.Now().UTC().Add(-time.Hour), rows, order)

	var mu sync.Mutex
	moved := map[string]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			cursor := ""
			for {
				code, a, raw := bulk(t, b, shopToken, "/v1/notifications:retry", ingest.BulkRequest{
					Filter: ingest.Filter{Status: "failed", Error: "HTTP 500"}, Reason: "receiver outage", Batch: 7, Cursor: cursor})
				if !assertOK(t, code, raw) {
					return
				}
				mu.Lock()
				for _, id := range a.IDs {
					moved[id]++
				}
				mu.Unlock()
				if a.NextCursor == "" {
					return
				}
				cursor = a.NextCursor
			}
		})
	}
	wg.Wait()
	var want []string
	for i, name := range order {
		if i%10 != 0 {
			want = append(want, ids[name])
			require.Equal(t, 1, moved[ids[name]], "notification %s moved %d times", name, moved[ids[name]])
		}
	}
	require.Len(t, moved, 54)
	got := streamIDs(t, b, "high")
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stream entries (-want +got):\n%s", diff)
	}

	n, err := b.store.Get(context.Background(), ids["n01"])
	require.NoError(t, err)
	require.Equal(t, notification.Queued, n.Status)
	require.Zero(t, n.Attempts, "fresh attempts")
	require.Nil(t, n.FailedAt)
	attempts, err := b.store.Attempts(context.Background(), ids["n01"])
	require.NoError(t, err)
	last := attempts[len(attempts)-1]
	require.Equal(t, store.OutcomeReplayed, last.Outcome)
	require.Equal(t, 3, last.Attempt, "the history row keeps the attempts made before the replay")
	require.Regexp(t, `^replayed by token sha256:[0-9a-f]{12}: receiver outage$`, last.Error)
	require.NotContains(t, last.Error, shopToken)

	// The same replay again finds nothing: every row has left failed.
	code, a, raw := bulk(t, b, shopToken, "/v1/notifications:retry", ingest.BulkRequest{Filter: ingest.Filter{Status: "failed"}})
	require.Equal(t, http.StatusOK, code, raw)
	require.Zero(t, a.Moved)
	require.Len(t, streamIDs(t, b, "high"), 54)
}

func assertOK(t *testing.T, code int, raw string) bool {
	t.Helper()
	if code != http.StatusOK {
		t.Errorf("answer %d: %s", code, raw)
		return false
	}
	return true
}

func TestRetryAndCancelByIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows, order := operatorRows()
	ids := fixture(t, b, time.Now().UTC(), rows, order)

	// b1 is another token's: listed, but not moved.
	code, a, raw := bulk(t, b, shopToken, "/v1/notifications:retry", ingest.BulkRequest{IDs: []string{ids["a1"], ids["a2"], ids["b1"]}})
	require.Equal(t, http.StatusOK, code, raw)
	require.Equal(t, []string{ids["a1"]}, a.IDs)

	code, a, raw = bulk(t, b, shopToken, "/v1/notifications:cancel", ingest.BulkRequest{Filter: ingest.Filter{Status: "queued"}})
	require.Equal(t, http.StatusOK, code, raw)
	slices.Sort(a.IDs)
	want := []string{ids["a1"], ids["a3"]}
	slices.Sort(want)
	require.Equal(t, want, a.IDs, "a1 was queued again by the replay, a3 was queued")
	got := statuses(t, b)
	require.Equal(t, notification.Cancelled, got[ids["a1"]])
	require.Equal(t, notification.Cancelled, got[ids["a3"]])
	require.Equal(t, notification.Failed, got[ids["b1"]])
	attempts, err := b.store.Attempts(context.Background(), ids["a3"])
	require.NoError(t, err)
	require.Equal(t, store.OutcomeCancelled, attempts[len(attempts)-1].Outcome)
}

func TestBulkBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := map[string]struct {
		path  string
		body  string
		field string
	}{
		"neither ids nor filter":   {":retry", `{}`, "filter"},
		"both ids and filter":      {":retry", `{"ids":["0190c0de-0000-7000-8000-000000000000"],"filter":{"status":"failed"}}`, "filter"},
		"bad id":                   {":cancel", `{"ids":["nope"]}`, "ids[0].id"},
		"unknown field":            {":retry", `{"filters":{}}`, ""},
		"not JSON":                 {":retry", `status=failed`, ""},
		"bad filter status":        {":retry", `{"filter":{"status":"gone"}}`, "filter.status"},
		"status retry won't move":  {":retry", `{"filter":{"status":"delivered"}}`, "filter.status"},
		"status cancel won't move": {":cancel", `{"filter":{"status":"failed"}}`, "filter.status"},
		"batch over max":           {":retry", `{"filter":{"status":"failed"},"batch":5000}`, "batch"},
		"bad cursor":               {":retry", `{"filter":{"status":"failed"},"cursor":"x"}`, "cursor"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hr, err := http.NewRequest(http.MethodPost, b.url+"/v1/notifications"+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			hr.Header.Set("Authorization", "Bearer "+shopToken)
			resp, err := http.DefaultClient.Do(hr)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			body := decode[ceserver.ErrorBody](t, resp)
			require.NotEmpty(t, body.Fields)
			require.Equal(t, tt.field, body.Fields[0].Field)
		})
	}
}

// FuzzParseBulkRequest: any body gives a request or field errors; never a panic.
func FuzzParseBulkRequest(f *testing.F) {
	for _, seed := range []string{`{}`, `{"ids":["0190c0de-0000-7000-8000-000000000000"]}`,
		`{"filter":{"status":"failed,expired","since":"2026-03-01T00:00:00Z"},"dry_run":true}`,
		`{"filter":{"error":"%_\\"},"cursor":"MS4xLjI"}`, `[]`, `{"batch":-1}`, `{"ids":null}`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, filter, _, errs := ingest.ParseBulkRequest(body)
		if errs != nil {
			return
		}
		if len(req.IDs) == 0 && filter.Statuses == nil && filter.Channel == "" && filter.Priority == "" &&
			filter.Source == "" && filter.Since.IsZero() && filter.Until.IsZero() && filter.Error == "" {
			t.Fatalf("accepted a request that names nothing: %s", body)
		}
	})
}

// FuzzDecodeCursor: a cursor decodes only to what encodes back to it; never a panic.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(store.Cursor{CreatedAt: time.Unix(1700000000, 123000).UTC(), ID: "0190c0de-0000-7000-8000-000000000000"}.Encode())
	for _, seed := range []string{"", "x", "MS4xLjI", "bm90LWEtY3Vyc29y"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := store.DecodeCursor(s)
		if err != nil {
			return
		}
		again, err := store.DecodeCursor(c.Encode())
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

// TestReplayEnqueuesAfterCommit: a deliver function that reads a replayed notification's stream
// entry at once must find the row queued, so the entry is added only after the commit.
func TestReplayEnqueuesAfterCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows, order := operatorRows()
	ids := fixture(t, b, time.Now().UTC(), rows, order)
	ctx := context.Background()
	var seen []notification.Status
	moved, err := b.store.Replay(ctx, store.Filter{IDs: []string{ids["a1"]}}, nil, 10, "test", func(ctx context.Context, due []store.Due) error {
		n, err := b.store.Get(ctx, due[0].ID) // another connection, as a deliver function's
		seen = append(seen, n.Status)
		return err
	})
	require.NoError(t, err)
	require.Len(t, moved.Notifications, 1)
	require.Equal(t, []notification.Status{notification.Queued}, seen)

	// When the streams cannot be reached the rows stay queued for the recover job.
	moved, err = b.store.Replay(ctx, store.Filter{IDs: []string{ids["a4"]}}, nil, 10, "test", func(context.Context, []store.Due) error {
		return fmt.Errorf("redis down")
	})
	require.ErrorIs(t, err, store.ErrEnqueueLater)
	require.Len(t, moved.Notifications, 1)
	require.Equal(t, notification.Queued, statuses(t, b)[ids["a4"]])
}
