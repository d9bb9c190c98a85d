package ingest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/store"
)

const opsToken = "tok-ops"

func setupChannels(t *testing.T, channels ...string) *testBundle {
	t.Helper()
	cfg := testConfig()
	cfg.Channels = channels
	cfg.Tokens[opsToken] = []string{"*"}
	return setupConfig(t, pulsetest.DatabaseURL(t), cfg)
}

func TestDisabledChannelIsRejected(t *testing.T) {
	t.Parallel()
	b := setupChannels(t, "webhook", "email")
	tests := map[string]struct {
		data string
		want int
	}{
		"enabled webhook": {webhookData(""), http.StatusAccepted},
		"enabled email":   {`{"channel":"email","to":"ada@example.com","subject":"s","body":"b"}`, http.StatusAccepted},
		"disabled sms":    {`{"channel":"sms","to":"+15550001111","body":"b"}`, http.StatusBadRequest},
		"disabled push":   {`{"channel":"push","to":"device-token","subject":"t","body":"b"}`, http.StatusBadRequest},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			resp := postBinary(t, b, shopToken, shopSource, pulsetest.Name("e"), "dev.pulse.notification.requested", tt.data)
			defer resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode)
			if tt.want != http.StatusBadRequest {
				return
			}
			var body ceserver.ErrorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Len(t, body.Fields, 1)
			require.Equal(t, "data.channel", body.Fields[0].Field)
			require.Contains(t, body.Fields[0].Message, "not enabled")
			require.Contains(t, body.Fields[0].Details, "webhook, email")
		})
	}
}

func (b *testBundle) call(t *testing.T, method, path, token string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if into != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, into))
	}
	return resp.StatusCode
}

func TestSuppressionsAPI(t *testing.T) {
	t.Parallel()
	b := setupChannels(t, "webhook", "email", "sms")
	ctx := context.Background()
	for _, sup := range []store.Suppression{
		{Address: store.Address{Channel: "email", Address: "gone@example.com"}, Reason: "no such user", ErrorCode: "5.1.1"},
		{Address: store.Address{Channel: "sms", Address: "+15550001111"}, Reason: "opted out", ErrorCode: "21610"},
	} {
		require.NoError(t, b.store.Suppress(ctx, sup))
	}

	var list ingest.Suppressions
	require.Equal(t, http.StatusOK, b.call(t, http.MethodGet, "/v1/suppressions", opsToken, &list))
	require.Len(t, list.Suppressions, 2)
	require.Equal(t, http.StatusOK, b.call(t, http.MethodGet, "/v1/suppressions?channel=email&address="+url.QueryEscape("gone@example.com"), opsToken, &list))
	got := []store.Address{}
	for _, s := range list.Suppressions {
		got = append(got, s.Address)
	}
	if diff := cmp.Diff([]store.Address{{Channel: "email", Address: "gone@example.com"}}, got); diff != "" {
		t.Fatalf("listed (-want +got):\n%s", diff)
	}

	tests := map[string]struct {
		method, path, token string
		want                int
	}{
		"source token may not list":   {http.MethodGet, "/v1/suppressions", shopToken, http.StatusForbidden},
		"source token may not remove": {http.MethodDelete, "/v1/suppressions/email/gone@example.com", shopToken, http.StatusForbidden},
		"no token":                    {http.MethodGet, "/v1/suppressions", "", http.StatusUnauthorized},
		"unknown channel":             {http.MethodGet, "/v1/suppressions?channel=fax", opsToken, http.StatusBadRequest},
		"bad limit":                   {http.MethodGet, "/v1/suppressions?channel=email&limit=0", opsToken, http.StatusBadRequest},
		"remove unknown channel":      {http.MethodDelete, "/v1/suppressions/fax/x", opsToken, http.StatusBadRequest},
		"remove not suppressed":       {http.MethodDelete, "/v1/suppressions/email/ada@example.com", opsToken, http.StatusNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tt.want, b.call(t, tt.method, tt.path, tt.token, nil))
		})
	}

	var removed ingest.SuppressionRemoved
	require.Equal(t, http.StatusOK, b.call(t, http.MethodDelete, "/v1/suppressions/email/gone@example.com", opsToken, &removed))
	require.Equal(t, ingest.SuppressionRemoved{Channel: "email", Address: "gone@example.com", Removed: true}, removed)
	require.Equal(t, http.StatusNotFound, b.call(t, http.MethodDelete, "/v1/suppressions/email/gone@example.com", opsToken, nil))
	left, err := b.store.Suppressed(ctx, []store.Address{{Channel: "email", Address: "gone@example.com"}, {Channel: "sms", Address: "+15550001111"}})
	require.NoError(t, err)
	require.Len(t, left, 1, "only the removed suppression is gone")
}
