package notification_test

import (
	"testing"

	"github.com/pulse-knative/pulse/pkg/notification"
)

// BenchmarkParseRequest parses the data of a typical webhook request.
func BenchmarkParseRequest(b *testing.B) {
	data := []byte(`{"channel":"webhook","to":"http://127.0.0.1:9/hook","priority":"high","data":{"n":12345}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := notification.ParseRequest(data, now); errs != nil {
			b.Fatal(errs)
		}
	}
}
