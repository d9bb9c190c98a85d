package recorder_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/queue"
)

type testBundle struct {
	redis    *redis.Client
	keys     queue.Keys
	recorder *recorder.Recorder
}

// setup returns a recorder writing under a key prefix of its own.
func setup(t testing.TB) *testBundle {
	t.Helper()
	redisURL, prefix := pulsetest.Redis(t)
	client, err := queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	keys := queue.NewKeys(prefix)
	return &testBundle{redis: client, keys: keys, recorder: recorder.New(client, keys)}
}

// hashes returns every hash under the bundle's prefix, keyed by what follows the prefix.
func (b *testBundle) hashes(t *testing.T) map[string]map[string]string {
	t.Helper()
	ctx := context.Background()
	prefix := b.keys.Attempts()[:len(b.keys.Attempts())-len("attempts")]
	got := map[string]map[string]string{}
	iter := b.redis.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		fields, err := b.redis.HGetAll(ctx, iter.Val()).Result()
		require.NoError(t, err)
		got[strings.TrimPrefix(iter.Val(), prefix)] = fields
	}
	require.NoError(t, iter.Err())
	return got
}

// mixedBatch has several channels, priorities and outcomes, delivered and not, with
// latencies in several buckets, on a bucket's bound and past the last. Their seconds add up
// exactly in binary floating point, so the sums compare exactly.
var mixedBatch = []recorder.Observation{
	{Channel: "email", Priority: "high", Outcome: "delivered", Delivered: true, Latency: 250 * time.Millisecond},
	{Channel: "email", Priority: "high", Outcome: "delivered", Delivered: true, Latency: 500 * time.Millisecond},
	{Channel: "email", Priority: "high", Outcome: "delivered", Delivered: true, Latency: 125 * time.Millisecond},
	{Channel: "email", Priority: "high", Outcome: "transient"},
	{Channel: "email", Priority: "high", Outcome: "transient"},
	{Channel: "sms", Priority: "low", Outcome: "delivered", Delivered: true, Latency: 4 * time.Hour},
	{Channel: "sms", Priority: "low", Outcome: "permanent"},
	{Channel: "webhook", Priority: "high", Outcome: "delivered", Delivered: true, Latency: 45 * time.Second},
	{Channel: "webhook", Priority: "low", Outcome: "delivered", Delivered: true, Latency: 1500 * time.Millisecond},
	{Channel: "email", Priority: "high", Outcome: "delivered", Delivered: true, Latency: 2 * time.Second},
	{Channel: "webhook", Priority: "high", Outcome: "delivered", Delivered: true, Latency: 45 * time.Second},
	{Channel: "push", Priority: "low", Outcome: "permanent"},
}

func TestRecordFoldsABatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	batched := setup(t)
	require.NoError(t, batched.recorder.Record(ctx, mixedBatch...))

	want := map[string]map[string]string{
		"attempts": {
			"email:high:delivered": "4", "email:high:transient": "2", "sms:low:delivered": "1", "sms:low:permanent": "1",
			"webhook:high:delivered": "2", "webhook:low:delivered": "1", "push:low:permanent": "1",
		},
		"latency:email:high":   {"0.25": "2", "0.5": "1", "2.5": "1", "count": "4", "sum": "2.875"},
		"latency:sms:low":      {"+Inf": "1", "count": "1", "sum": "14400"},
		"latency:webhook:high": {"60": "2", "count": "2", "sum": "90"},
		"latency:webhook:low":  {"2.5": "1", "count": "1", "sum": "1.5"},
	}
	if diff := cmp.Diff(want, batched.hashes(t)); diff != "" {
		t.Fatalf("hashes after a batch (-want +got):\n%s", diff)
	}

	oneByOne := setup(t)
	for _, o := range mixedBatch {
		require.NoError(t, oneByOne.recorder.Record(ctx, o))
	}
	if diff := cmp.Diff(oneByOne.hashes(t), batched.hashes(t)); diff != "" {
		t.Fatalf("a batch against one observation at a time (-one by one +batch):\n%s", diff)
	}

	// A second batch adds to what the first left.
	require.NoError(t, batched.recorder.Record(ctx, mixedBatch[:3]...))
	require.Equal(t, map[string]string{"0.25": "4", "0.5": "2", "2.5": "1", "count": "7", "sum": "3.75"},
		batched.hashes(t)["latency:email:high"])
}

// TestRecordSendsAFewCommands: the metrics of 50 deliveries of one channel and priority cost
// a command per field they change, not four per delivery.
func TestRecordSendsAFewCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var sent atomic.Int64
	b.redis.AddHook(countPipelined{&sent})
	obs := make([]recorder.Observation, 50)
	for i := range obs {
		obs[i] = recorder.Observation{Channel: "webhook", Priority: "high", Outcome: "delivered", Delivered: true,
			Latency: time.Duration(i%2+1) * 31250 * time.Microsecond} // buckets 0.05 and 0.1
	}
	require.NoError(t, b.recorder.Record(ctx, obs...))
	// The attempts field, two buckets, the count and the sum.
	require.Equal(t, int64(5), sent.Load())
	require.Equal(t, map[string]string{"0.05": "25", "0.1": "25", "count": "50", "sum": "2.34375"},
		b.hashes(t)["latency:webhook:high"])
}

func TestRecordNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.recorder.Record(context.Background()))
	require.Empty(t, b.hashes(t))
}

// countPipelined counts the HINCRBY and HINCRBYFLOAT commands a client sends in pipelines
// (not the client's own setup of a connection).
type countPipelined struct{ n *atomic.Int64 }

func (c countPipelined) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c countPipelined) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (c countPipelined) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if strings.HasPrefix(cmd.Name(), "hincrby") {
				c.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// BenchmarkRecord records the metrics of a batch of 50 deliveries of one channel and
// priority, the batch a busy deliver function hands the recorder.
func BenchmarkRecord(b *testing.B) {
	bundle := setup(b)
	obs := make([]recorder.Observation, 50)
	for i := range obs {
		obs[i] = recorder.Observation{Channel: "webhook", Priority: "high", Outcome: "delivered", Delivered: true,
			Latency: time.Duration(i) * 10 * time.Millisecond}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bundle.recorder.Record(ctx, obs...); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBufferFlushesEveryInterval: observations reach Redis on the next tick without Close, and
// a tick with nothing buffered writes nothing.
func TestBufferFlushesEveryInterval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	buf := b.recorder.NewBuffer(20*time.Millisecond, slog.New(slog.DiscardHandler))
	defer buf.Close()
	for range 3 {
		buf.Add(recorder.Observation{Channel: "webhook", Priority: "high", Outcome: "delivered", Delivered: true, Latency: time.Millisecond})
	}
	require.Eventually(t, func() bool {
		return b.hashes(t)["attempts"]["webhook:high:delivered"] == "3"
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "3", b.hashes(t)["latency:webhook:high"]["count"])
}

// TestBufferCloseRecordsTheRest: what was added before Close is in Redis when Close returns,
// as if recorded at once; a second Close does nothing.
func TestBufferCloseRecordsTheRest(t *testing.T) {
	t.Parallel()
	b, direct := setup(t), setup(t)
	buf := b.recorder.NewBuffer(time.Hour, slog.New(slog.DiscardHandler))
	for _, o := range mixedBatch {
		buf.Add(o)
	}
	buf.Close()
	buf.Close()
	require.NoError(t, direct.recorder.Record(context.Background(), mixedBatch...))
	require.Empty(t, cmp.Diff(direct.hashes(t), b.hashes(t)))
}

// TestBufferBoundsWhatItHolds: past its bound a buffer drops observations, counts them and
// says so once, instead of growing while Redis does not take them.
func TestBufferBoundsWhatItHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var logs strings.Builder
	buf := b.recorder.NewBuffer(time.Hour, slog.New(slog.NewJSONHandler(&logs, nil)))
	const bound = 1 << 16
	for range bound + 10 {
		buf.Add(recorder.Observation{Channel: "sms", Priority: "low", Outcome: "transient"})
	}
	buf.Close()
	require.Equal(t, strconv.Itoa(bound), b.hashes(t)["attempts"]["sms:low:transient"])
	require.Equal(t, 1, strings.Count(logs.String(), "observations dropped"), logs.String())
	require.Contains(t, logs.String(), `"observations":10`)
}
