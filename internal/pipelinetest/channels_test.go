package pipelinetest_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/pipelinetest"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
)

// TestEndToEndEveryChannel posts 1000 notifications mixed across webhook, email, SMS and push
// through running ingest, deliver and stream-source processes whose accounts point at the
// captures `pulse dev` runs: every one is delivered, each arrives exactly once, and the
// provider message id each notification records is the one its capture answered with.
func TestEndToEndEveryChannel(t *testing.T) {
	t.Parallel()
	p := pipelinetest.Start(t, pipelinetest.Options{Channels: true})
	const n = 1000
	channels := []string{"webhook", "email", "sms", "push"}
	start := time.Now()
	ids := p.Send(t, n, 16, func(i int) string {
		prio := "high"
		if i%3 == 0 {
			prio = "low"
		}
		switch channels[i%4] {
		case "email":
			return fmt.Sprintf(`{"channel":"email","to":"user%d@example.com","subject":"Order %d","body":"text %d","html":"<p>html %d</p>","priority":%q}`,
				i, i, i, i, prio)
		case "sms":
			return fmt.Sprintf(`{"channel":"sms","to":"+1555%07d","body":"sms %d","priority":%q}`, i, i, prio)
		case "push":
			return fmt.Sprintf(`{"channel":"push","to":"device-%d","subject":"Order %d","body":"push %d","data":{"data":{"n":"%d"}},"priority":%q}`,
				i, i, i, i, prio)
		}
		return fmt.Sprintf(`{"channel":"webhook","to":%q,"priority":%q,"data":{"n":%d}}`, p.ReceiverURL(), prio, i)
	})
	db := p.DB(t)
	pipelinetest.WaitFor(t, time.Minute, func() bool {
		return pipelinetest.StatusCounts(t, db)["delivered"] == n
	}, func() string { return fmt.Sprint(pipelinetest.StatusCounts(t, db)) })
	t.Logf("%d notifications sent and delivered in %s", n, time.Since(start).Round(time.Millisecond))

	providerIDs := map[string]string{}
	rows, err := db.Query(context.Background(), "select id::text, channel, provider_message_id from notifications")
	require.NoError(t, err)
	for rows.Next() {
		var id, channel, providerID string
		require.NoError(t, rows.Scan(&id, &channel, &providerID))
		if channel != "webhook" {
			require.NotEmpty(t, providerID, "notification %s (%s) records its provider message id", id, channel)
		}
		providerIDs[id] = providerID
	}
	require.NoError(t, rows.Err())
	require.Len(t, providerIDs, n)

	// Each capture's messages, keyed by the notification they carry: the id itself where the
	// message has a place for it (webhook-id, X-Pulse-Notification-Id), else the index the
	// test put in the body, mapped back to the id ingest answered.
	got := map[string]map[string]int{"webhook": p.Receiver.Counts(), "email": {}, "sms": {}, "push": {}}
	sent := map[string]string{} // notification id: the provider message id the capture answered with
	index := func(s, prefix string) int {
		i, err := strconv.Atoi(strings.TrimPrefix(s, prefix))
		require.NoError(t, err, "%q", s)
		require.Less(t, i, n)
		return i
	}
	for _, m := range p.Channels.SMTP.Mails() {
		i := index(m.Text, "text ")
		id := m.Header.Get("X-Pulse-Notification-Id")
		require.Equal(t, ids[i], id, "the mail's header and body name the same notification")
		got["email"][id]++
		sent[id] = m.Header.Get("Message-Id")
		require.Equal(t, []string{fmt.Sprintf("user%d@example.com", i)}, m.To)
		require.Equal(t, fmt.Sprintf("Order %d", i), m.Header.Get("Subject"))
		require.Equal(t, fmt.Sprintf("<p>html %d</p>", i), m.HTML)
	}
	for _, m := range p.Channels.Twilio.Messages() {
		i := index(m.Body, "sms ")
		got["sms"][ids[i]]++
		sent[ids[i]] = m.SID
		require.Equal(t, fmt.Sprintf("+1555%07d", i), m.To)
	}
	for _, m := range p.Channels.FCM.Messages() {
		i := index(m.Data["n"], "")
		got["push"][ids[i]]++
		sent[ids[i]] = m.Name
		require.Equal(t, fmt.Sprintf("device-%d", i), m.Token)
		require.Equal(t, fmt.Sprintf("push %d", i), m.Body)
	}
	// Each deliver process fetches one access token and shares it among its sends.
	require.LessOrEqual(t, p.Channels.FCM.Grants(), 2, "access tokens granted")

	for i, id := range ids {
		channel := channels[i%4]
		for _, other := range channels {
			want := 0
			if other == channel {
				want = 1
			}
			require.Equal(t, want, got[other][id], "%s notification %d (%s) received by the %s capture", channel, i, id, other)
		}
		if channel != "webhook" {
			require.Equal(t, strings.Trim(sent[id], "<>"), strings.Trim(providerIDs[id], "<>"),
				"%s notification %d records the capture's message id", channel, i)
		}
	}
	for channel, counts := range got {
		require.Len(t, counts, n/4, "distinct notifications the %s capture received", channel)
	}
	_, _, invalid := p.Receiver.Stats()
	require.Zero(t, invalid, "webhooks with a bad signature")
}

// TestRateLimitSharedByDeliverProcesses: three deliver-high processes, each fed by its own
// stream source, share the SMS account's limit of N/s through Redis. With 5×N notifications
// queued at once, the capture never receives more than N+2 in any one-second window, every
// notification is delivered exactly once, and a throttled send is not counted as an attempt.
func TestRateLimitSharedByDeliverProcesses(t *testing.T) {
	t.Parallel()
	const perSecond = 10
	p := pipelinetest.Start(t, pipelinetest.Options{Channels: true, ChannelRate: fmt.Sprintf("%d/s", perSecond), DeliverHigh: 3,
		Cron: true, CronEvery: 200 * time.Millisecond})
	const n = 5 * perSecond
	ids := p.Send(t, n, 16, func(i int) string {
		return fmt.Sprintf(`{"channel":"sms","to":"+1555%07d","body":"sms %d"}`, i, i)
	})
	db := p.DB(t)
	pipelinetest.WaitFor(t, time.Minute, func() bool {
		return pipelinetest.StatusCounts(t, db)["delivered"] == n
	}, func() string { return fmt.Sprint(pipelinetest.StatusCounts(t, db)) })

	got := p.Channels.Twilio.Messages()
	seen := map[string]int{}
	for _, m := range got {
		seen[m.Body]++
	}
	for i, id := range ids {
		require.Equal(t, 1, seen[fmt.Sprintf("sms %d", i)], "notification %d (%s) received", i, id)
	}
	require.Len(t, got, n)
	// The limit spaces sends 1/N s apart (GCRA, burst 1). A window's closed ends allow one more,
	// and the time between taking a send from the limit and its arrival another.
	sort.Slice(got, func(i, j int) bool { return got[i].Received.Before(got[j].Received) })
	for i := range got {
		j := i
		for j < len(got) && got[j].Received.Sub(got[i].Received) <= time.Second {
			j++
		}
		require.LessOrEqual(t, j-i, perSecond+2, "messages received in the second from %s", got[i].Received)
	}
	var attempts int
	require.NoError(t, db.QueryRow(context.Background(), "select count(*) from delivery_attempts").Scan(&attempts))
	require.Equal(t, n, attempts, "attempt rows: a throttled send is put back, not attempted")
	rdb, keys := p.Redis(t)
	throttled, err := rdb.HGet(context.Background(), keys.Throttled(), recorder.ThrottledField("sms", capture.AccountName)).Int()
	require.NoError(t, err)
	require.Positive(t, throttled, "the limit held sends back")
}
