package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// BenchmarkReceiveBatch sends ingest application/cloudevents-batch+json requests of 100
// events, four at a time, against real PostgreSQL and Redis; ns/op is per event. Run it with
// -cpuprofile to see where ingest's own CPU goes without the bench's processes around it.
func BenchmarkReceiveBatch(b *testing.B) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	tb := setupConfig(b, pulsetest.DatabaseURL(b), cfg)
	const size = 100
	var next atomic.Int64
	body := func() string {
		first := next.Add(size) - size
		events := make([]string, size)
		for i := range events {
			events[i] = fmt.Sprintf(`{"specversion":"1.0","id":"ev-%d","source":%q,"type":%q,"datacontenttype":"application/json","data":{"channel":"webhook","to":"http://127.0.0.1:9/hook","priority":"high","data":{"n":%d}}}`,
				first+int64(i), shopSource, notification.TypeRequested, first+int64(i))
		}
		return "[" + strings.Join(events, ",") + "]"
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	reqs := b.N/size + 1
	var sent atomic.Int64
	for range 4 {
		wg.Go(func() {
			for sent.Add(1) <= int64(reqs) {
				req, _ := http.NewRequest(http.MethodPost, tb.url+"/", strings.NewReader(body()))
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				req.Header.Set("Authorization", "Bearer "+shopToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
}
