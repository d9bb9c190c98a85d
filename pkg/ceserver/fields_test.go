package ceserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/fielderr"
)

// TestReadEventsNamesTheField: every 400 ReadEvents gives names the attribute at fault, the
// batch index, or the body when there is neither.
func TestReadEventsNamesTheField(t *testing.T) {
	t.Parallel()
	const ev = `{"specversion":"1.0","id":"1","source":"s","type":"t"}`
	binary := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "s", "Ce-Type": "t", "Content-Type": "application/json"}
	for name, tc := range map[string]struct {
		headers map[string]string
		body    string
		want    []string
	}{
		"binary without specversion": {map[string]string{"Ce-Id": "1", "Ce-Source": "s", "Ce-Type": "t", "Content-Type": "application/json"}, `{}`, []string{"specversion"}},
		"binary unknown specversion": {with(binary, "Ce-Specversion", "2.0"), `{}`, []string{"specversion"}},
		"binary without id":          {with(binary, "Ce-Id", ""), `{}`, []string{"id"}},
		"binary without source":      {with(binary, "Ce-Source", ""), `{}`, []string{"source"}},
		"binary without type":        {with(binary, "Ce-Type", ""), `{}`, []string{"type"}},
		"binary bad time":            {with(binary, "Ce-Time", "yesterday"), `{}`, []string{"time"}},
		"structured not JSON":        {map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":`, []string{"body"}},
		"structured not an object":   {map[string]string{"Content-Type": "application/cloudevents+json"}, `[1]`, []string{"body"}},
		"structured no specversion":  {map[string]string{"Content-Type": "application/cloudevents+json"}, `{"id":"1","source":"s","type":"t"}`, []string{"specversion"}},
		"structured id not a string": {map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":1,"source":"s","type":"t"}`, []string{"id"}},
		"structured bad time":        {map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"x"}`, []string{"time"}},
		"structured bad base64":      {map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"!!"}`, []string{"data_base64"}},
		"structured huge number":     {map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"n":1e1000000}}`, []string{"data.n"}},
		"no event at all":            {map[string]string{"Content-Type": "text/plain"}, `hello`, []string{"specversion"}},
		"batch not JSON":             {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, `[`, []string{"body"}},
		"batch not an array":         {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, ev, []string{"body"}},
		"batch empty":                {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, `[]`, []string{"[0]"}},
		"batch over the limit":       {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, "[" + strings.Repeat(ev+",", 3) + ev + "]", []string{"[3]"}},
		"batch element not object":   {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, "[" + ev + ",1]", []string{"[1]"}},
		"batch element bad type":     {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, "[" + ev + "," + ev + `,{"specversion":"1.0","id":"1","source":"s","type":7}]`, []string{"[2].type"}},
		"batch element no id":        {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, "[" + ev + `,{"specversion":"1.0","source":"s","type":"t"}]`, []string{"[1].id"}},
		"batch element huge number":  {map[string]string{"Content-Type": "application/cloudevents-batch+json"}, "[" + ev + `,{"specversion":"1.0","id":"2","source":"s","type":"t","data":{"a":[1e1000000]}}]`, []string{"[1].data.a[0]"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			for k, v := range tc.headers {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			_, _, err := ceserver.ReadEvents(req, 1<<20, 3)
			require.Equal(t, http.StatusBadRequest, ceserver.Status(err), "%v", err)
			fe, ok := err.(*fielderr.Error)
			require.True(t, ok, "%T", err)
			var got []string
			for _, e := range fe.WrappedErrors() {
				got = append(got, e.Paths...)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		if key != k {
			out[key] = val
		}
	}
	return out
}
