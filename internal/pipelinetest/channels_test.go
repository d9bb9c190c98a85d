package pipelinetest_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pipelinetest"
	"github.com/pulse-knative/pulse/internal/pulsetest"
)

// TestEndToEndEveryChannel posts 1000 notifications mixed across webhook, email, SMS and push
// through running ingest, deliver and stream-source processes whose accounts point at the
// captures `pulse dev` runs: every one is delivered, each arrives exactly once, and the
// provider message id each notification records is the one its capture answered with.
func TestEndToEndEveryChannel(t *testing.T) {
	t.Parallel()
	redisURL, prefix := pulsetest.Redis(t)
	p := pipelinetest.Start(t, pipelinetest.Options{DatabaseURL: pulsetest.DatabaseURL(t), RedisURL: redisURL,
		Prefix: prefix, Channels: true})
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
