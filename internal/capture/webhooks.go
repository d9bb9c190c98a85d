package capture

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// Webhooks receives webhooks, verifies their signatures and counts them by webhook-id (the
// notification id). It is safe for concurrent use.
type Webhooks struct {
	secret string
	out    io.Writer
	status atomic.Int32
	delay  atomic.Int64

	// tally counts the deliveries that verify by webhook-id, and apart those that do not.
	tally    tally
	received chan struct{}
}

// NewWebhooks returns a receiver that verifies signatures made with secret (with each of
// several separated by spaces or commas) and, when out is
// not nil, prints one line per delivery to it.
func NewWebhooks(secret string, out io.Writer) *Webhooks {
	return &Webhooks{secret: secret, out: out, received: make(chan struct{}, 1)}
}

// Fail makes the receiver answer code (0 means answer 200 again).
func (w *Webhooks) Fail(code int) { w.status.Store(int32(code)) }

// Remember bounds the ids the receiver keeps for Count, Counts and Stats' distinct figure to
// between n and 2n of the most recent (0, the default, keeps all): a receiver that counts
// millions of deliveries stays small. A repeat further back than that counts as distinct.
// Call it before the first delivery.
func (w *Webhooks) Remember(n int) { w.tally.remember = n }

// Delay makes the receiver wait d before answering.
func (w *Webhooks) Delay(d time.Duration) { w.delay.Store(int64(d)) }

var _ http.Handler = (*Webhooks)(nil)

// ServeHTTP implements http.Handler.
func (w *Webhooks) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	if d := time.Duration(w.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	id := r.Header.Get(channel.HeaderWebhookID)
	if err := w.verify(r.Header, body); err != nil {
		w.tally.addApart()
		if w.out != nil {
			fmt.Fprintf(w.out, "webhook %s REJECTED: %v\n", id, err)
		}
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	if code := int(w.status.Load()); code != 0 {
		rw.WriteHeader(code)
		return
	}
	w.tally.add(id)
	notify(w.received)
	if w.out != nil {
		var payload struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &payload)
		fmt.Fprintf(w.out, "webhook received: %s %s signature ok, %d bytes, data=%s\n", r.URL.Path, id, len(body), payload.Data)
	}
	rw.WriteHeader(http.StatusOK)
}

// verify checks the webhook against every configured secret: during a rotation each one
// signs, and each must verify.
func (w *Webhooks) verify(header http.Header, body []byte) error {
	for _, secret := range strings.FieldsFunc(w.secret, func(r rune) bool { return r == ',' || r == ' ' }) {
		if err := channel.VerifyWebhook(secret, header, body, time.Now(), 0); err != nil {
			return err
		}
	}
	return nil
}

// Received is signalled (without blocking, so it may coalesce) after each accepted delivery.
func (w *Webhooks) Received() <-chan struct{} { return w.received }

// Count returns how many times notification id was delivered.
func (w *Webhooks) Count(id string) int { return w.tally.count(id) }

// Stats returns the deliveries accepted, the distinct notifications among them, and the
// deliveries rejected for a bad signature.
func (w *Webhooks) Stats() (total, distinct, invalid int) { return w.tally.stats() }

// Counts returns a copy of the deliveries per notification id.
func (w *Webhooks) Counts() map[string]int { return w.tally.all() }
