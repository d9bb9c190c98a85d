package streamsource_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

// acceptingSink answers 202 to every request, as a deliver function that took the event does,
// and counts the requests; all is closed at the want-th.
func acceptingSink(b *testing.B, want int64) (srv *httptest.Server, n *atomic.Int64, all chan struct{}) {
	b.Helper()
	n, all = &atomic.Int64{}, make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n.Add(1) == want {
			close(all)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(srv.Close)
	return srv, n, all
}

// reportCPU reports the CPU time the process spent (user and system, all goroutines: source,
// sink and Redis client) per op since start, a steadier measure than wall time on a busy
// machine.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLogger logs as cmd/stream-source does, at info, into nothing.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// BenchmarkSend measures one send of a dispatch entry to a sink answering 202: encoding the
// event, the POST and reading the answer.
func BenchmarkSend(b *testing.B) {
	srv, _, _ := acceptingSink(b, -1)
	cfg := streamsource.Config{
		Priority: "high", Group: "deliver", Consumer: "c1", Sink: srv.URL, Concurrency: 1,
		SinkTimeout: 5 * time.Second, ReclaimIdle: 10 * time.Second, MaxDeliveries: 1,
	}
	source, err := streamsource.New(cfg, nil, benchLogger())
	require.NoError(b, err)
	m := queue.Message{ID: "1700000000123-4", Fields: entryFields("0193a5c2-7d4e-7b1a-9f3e-2c4d5e6f7a8b")}
	ctx := context.Background()
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		status, err := source.Send(ctx, m)
		if err != nil || status != http.StatusAccepted {
			b.Fatalf("send: %d, %v", status, err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkRun measures the whole path of an entry through a running source with 8 slots,
// from the read of the stream to its acknowledgement, against the test Redis and a sink
// answering 202.
func BenchmarkRun(b *testing.B) {
	url, prefix := pulsetest.Redis(b)
	client := pulsetest.RedisClient(b, url)
	keys := queue.NewKeys(prefix)
	srv, delivered, all := acceptingSink(b, int64(b.N))
	ctx := context.Background()

	pipe := client.Pipeline()
	for i := range b.N {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream("high"), Values: entryFields(pulsetest.Name("n"))})
		if i%1000 == 999 {
			_, err := pipe.Exec(ctx)
			require.NoError(b, err)
		}
	}
	_, err := pipe.Exec(ctx)
	require.NoError(b, err)

	var commands commandCount
	client.AddHook(&commands)
	source, err := streamsource.New(streamsource.Config{
		Prefix: prefix, Priority: "high", Group: "deliver", Consumer: "c1", Sink: srv.URL,
		Concurrency: 8, SinkTimeout: 5 * time.Second, ReclaimIdle: time.Minute, MaxDeliveries: 3,
		ShutdownTimeout: 10 * time.Second,
	}, client, benchLogger())
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	go func() { done <- source.Run(runCtx) }()
	<-all
	// The acknowledgements follow the last answer by a round trip or two.
	for {
		p, err := client.XPending(ctx, keys.Stream("high"), "deliver").Result()
		require.NoError(b, err)
		if p.Count == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	reportCPU(b, cpu)
	b.ReportMetric(float64(commands.Load())/float64(b.N), "redis-cmds/op")
	cancel()
	require.NoError(b, <-done)
	require.Equal(b, int64(b.N), delivered.Load(), "each entry sent once")
}

// commandCount counts the commands a Redis client sends, those of pipelines one by one.
type commandCount struct{ atomic.Int64 }

func (c *commandCount) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCount) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCount) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
