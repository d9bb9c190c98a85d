package ingest_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// TestTokenPrefixBoundary: a token bound to "urn:billing" may send, read, look up and cancel
// as "urn:billing" and what continues it after '/', ':' or '#', and none of it as
// "urn:billingother".
func TestTokenPrefixBoundary(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		source string
		allow  bool
	}{
		"the prefix itself":   {"urn:billing", true},
		"after a colon":       {"urn:billing:invoices", true},
		"after a slash":       {"urn:billing/invoices", true},
		"after a hash":        {"urn:billing#eu", true},
		"a longer name":       {"urn:billingother", false},
		"a longer name, too":  {"urn:billing-eu:invoices", false},
		"a shorter name":      {"urn:bill", false},
		"another scheme-like": {"urn:billing.evil", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			do := func(method, path string) int {
				req, err := http.NewRequest(method, b.url+path, nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+billingToken)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				return resp.StatusCode
			}
			// Send.
			resp := postBinary(t, b, billingToken, tc.source, "send-1", notification.TypeRequested, webhookData(""))
			sent := 0
			if tc.allow {
				require.Equal(t, http.StatusAccepted, resp.StatusCode)
				sent = 1
			} else {
				require.Equal(t, http.StatusForbidden, resp.StatusCode)
			}
			require.Equal(t, sent, countRows(t, b), "only an allowed send is stored")

			// Notifications of this source that another tenant created: read, look up, cancel.
			acc, err := b.store.Insert(context.Background(), []store.NewNotification{
				{Source: tc.source, EventID: "other-1", MaxAttempts: 3, Request: notification.Request{
					Channel: notification.Webhook, To: "https://hooks.example.com/in", Priority: notification.High}},
				{Source: tc.source, EventID: "other-2", MaxAttempts: 3, Request: notification.Request{
					Channel: notification.Webhook, To: "https://hooks.example.com/in", Priority: notification.High}},
			})
			require.NoError(t, err)
			byID := "/v1/notifications/" + acc[0].ID
			byEvent := "/v1/notifications?" + url.Values{"source": {tc.source}, "id": {"other-1"}}.Encode()
			seen := http.StatusNotFound
			if tc.allow {
				seen = http.StatusOK
			}
			require.Equal(t, seen, do(http.MethodGet, byID), "get")
			require.Equal(t, seen, do(http.MethodGet, byEvent), "lookup by source and id")
			require.Equal(t, seen, do(http.MethodDelete, byEvent), "cancel by source and id")

			cancelEvent := http.StatusOK
			if !tc.allow {
				cancelEvent = http.StatusForbidden
			}
			resp = postBinary(t, b, billingToken, tc.source, "other-2", notification.TypeCancel, "")
			require.Equal(t, cancelEvent, resp.StatusCode, "cancel event")

			want := notification.Queued
			if tc.allow {
				want = notification.Cancelled
			}
			for _, a := range acc {
				n, err := b.store.Get(context.Background(), a.ID)
				require.NoError(t, err)
				require.Equal(t, want, n.Status, a.EventID)
			}
		})
	}
}
