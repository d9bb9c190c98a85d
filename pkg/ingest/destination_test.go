package ingest_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// TestWebhookDestinationRefusedAtIngest: credentials in a webhook URL and a port out of range
// get 400 naming data.to, the answer does not echo the password, and nothing is stored.
func TestWebhookDestinationRefusedAtIngest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, to := range map[string]string{
		"user and password": "https://hooks:pw-s3cret@hooks.example.com/in",
		"port 99999":        "https://hooks.example.com:99999/in",
	} {
		t.Run(name, func(t *testing.T) {
			resp := postBinary(t, b, shopToken, shopSource, "dest-"+name, notification.TypeRequested,
				`{"channel":"webhook","to":"`+to+`","data":{"order":7}}`)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NotContains(t, string(raw), "s3cret")
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			body := decode[ceserver.ErrorBody](t, resp)
			require.Len(t, body.Fields, 1)
			require.Equal(t, "data.to", body.Fields[0].Field)
		})
	}
	require.Equal(t, 0, countRows(t, b))
}
