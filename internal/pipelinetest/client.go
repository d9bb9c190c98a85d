package pipelinetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// SendWebhooks posts n webhook requests to ingest, one binary-mode CloudEvent each, from
// workers goroutines, and returns the notification ids in order. priority picks each one's
// priority; nil means high.
func (p *Pipeline) SendWebhooks(t testing.TB, n, workers int, priority func(i int) string) []string {
	t.Helper()
	return p.Send(t, n, workers, func(i int) string {
		prio := "high"
		if priority != nil {
			prio = priority(i)
		}
		return fmt.Sprintf(`{"channel":"webhook","to":%q,"priority":%q,"data":{"n":%d}}`, p.ReceiverURL(), prio, i)
	})
}

// Send posts n requests to ingest, one binary-mode CloudEvent each whose data request(i)
// gives, from workers goroutines, and returns the notification ids in order. Each must be
// accepted.
func (p *Pipeline) Send(t testing.TB, n, workers int, request func(i int) string) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make(chan error, workers)
	next := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	source := "urn:pulse:test:" + p.opts.Prefix
	for range workers {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, p.IngestURL()+"/", strings.NewReader(request(i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Ce-Specversion", "1.0")
				req.Header.Set("Ce-Id", fmt.Sprint("req-", i))
				req.Header.Set("Ce-Source", source)
				req.Header.Set("Ce-Type", "dev.pulse.notification.requested")
				resp, err := client.Do(req)
				if err != nil {
					errs <- fmt.Errorf("post %d: %w", i, err)
					return
				}
				var answer struct {
					ID string `json:"id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&answer)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || err != nil {
					errs <- fmt.Errorf("post %d: status %d, %v", i, resp.StatusCode, err)
					return
				}
				ids[i] = answer.ID
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return ids
}

// DB returns a pool on the pipeline's database, closed when the test ends.
func (p *Pipeline) DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), p.opts.DatabaseURL)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Redis returns a client of the pipeline's Redis, closed when the test ends, and the keys of
// its prefix.
func (p *Pipeline) Redis(t testing.TB) (*redis.Client, queue.Keys) {
	t.Helper()
	return pulsetest.RedisClient(t, p.opts.RedisURL), queue.NewKeys(p.opts.Prefix)
}

// StatusCounts returns how many notifications are in each state.
func StatusCounts(t testing.TB, db *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := db.Query(context.Background(), "select status, count(*) from notifications group by status")
	if err != nil {
		t.Fatalf("count statuses: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatalf("count statuses: %v", err)
		}
		out[s] = n
	}
	return out
}

// WaitFor polls cond every 100ms until it holds, failing the test after timeout with the
// message msg() gives.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, msg())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
