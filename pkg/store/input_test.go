package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/store"
)

// FuzzInsertParsedRequest's oracle is PostgreSQL: a request whose event key and data ingest
// accepts is stored by Insert, whatever its text and data hold.
func FuzzInsertParsedRequest(f *testing.F) {
	for _, seed := range []struct{ source, id, data string }{
		{"s", "1", `{"channel":"webhook","to":"https://h.example/in","data":{"k":"\\u0000","n":-0,"z":0e1000000}}`},
		{"s", "2", `{"channel":"webhook","to":"https://h.example/in","data":{"k":"\ud800"}}`},
		{"s", "3", `{"channel":"webhook","to":"https://h.example/in","data":{"n":1e1000000,"m":1e-1000000}}`},
		{"s", "4", "{\"channel\":\"webhook\",\"to\":\"https://h.example/in\",\"data\":{\"k\":\"\xff\"}}"},
		{"s", "5", `{"channel":"sms","to":"+15551234567","body":"a\u0000b","metadata":{"k":"\udc00"}}`},
		{"s", "6", "{\"channel\":\"push\",\"to\":\"t\xc3\",\"subject\":\"\xfe\",\"body\":\"b\"}"},
		{"s", "7", `{"channel":"email","to":"ada@example.com","subject":"\ud83d\ude00","html":"<p>\\u0000</p>"}`},
		{"s\xff", "8", `{"channel":"sms","to":"+15551234567","body":"b"}`},
		{"s", "9\x00", `{"channel":"sms","to":"+15551234567","body":"b"}`},
		{"s", "10", `{"channel":"webhook","to":"https://h.example/in","data":{"n":99999e131067,"f":1.5e-16382}}`},
	} {
		f.Add(seed.source, seed.id, []byte(seed.data))
	}
	b := setup(f)
	f.Fuzz(func(t *testing.T, source, id string, data []byte) {
		if notification.ValidateEventKey(source, id) != nil {
			return
		}
		req, errs := notification.ParseRequest(data, b.now)
		if errs != nil {
			return
		}
		_, err := b.store.Insert(context.Background(), []store.NewNotification{{Source: source, EventID: id + pulsetest.Name("-"), Request: req, MaxAttempts: 3}})
		require.NoError(t, err, "ParseRequest accepted %q", data)
	})
}

// TestUnstorableNamesTheItem: Unstorable finds the item PostgreSQL refuses and names the field,
// storing nothing.
func TestUnstorableNamesTheItem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		spoil func(*store.NewNotification)
		field string
	}{
		"data":     {func(n *store.NewNotification) { n.Request.Data = json.RawMessage(`{"k":"\ud800"}`) }, "data.data"},
		"to":       {func(n *store.NewNotification) { n.Request.To = "\xff" }, "data.to"},
		"html":     {func(n *store.NewNotification) { n.Request.HTML = "\x00" }, "data.html"},
		"source":   {func(n *store.NewNotification) { n.Source = "\xfe" }, "source"},
		"metadata": {func(n *store.NewNotification) { n.Request.Metadata = map[string]string{"k": "\x00"} }, "data.metadata"},
	} {
		t.Run(name, func(t *testing.T) {
			items := []store.NewNotification{webhookRequest("s", "a"), webhookRequest("s", "b"), webhookRequest("s", "c")}
			tc.spoil(&items[1])
			i, err := b.store.Unstorable(ctx, items)
			require.Equal(t, 1, i)
			var ie *store.InputError
			require.True(t, errors.As(err, &ie), "%v", err)
			require.Equal(t, tc.field, ie.Field)
			require.ErrorIs(t, err, store.ErrInvalidInput)

			_, err = b.store.Insert(ctx, items)
			require.ErrorIs(t, err, store.ErrInvalidInput)
		})
	}
	i, err := b.store.Unstorable(ctx, []store.NewNotification{webhookRequest("s", "a")})
	require.NoError(t, err)
	require.Equal(t, -1, i)
	var n int
	require.NoError(t, b.store.Pool().QueryRow(ctx, "select count(*) from notifications").Scan(&n))
	require.Zero(t, n, "nothing is stored")
}
