package channel_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/pulse-knative/pulse/pkg/channel"
)

// fakeDNS serves the A and AAAA records of names (fully qualified, "a.example.") over UDP
// and returns a resolver that asks it and nothing else.
func fakeDNS(t *testing.T, names map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			addr, known := names[q.Name.String()]
			rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
			if !known {
				rh.RCode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, rh)
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			res := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
			switch {
			case known && q.Type == dnsmessage.TypeA && addr.Is4():
				_ = b.AResource(res, dnsmessage.AResource{A: addr.As4()})
			case known && q.Type == dnsmessage.TypeAAAA && addr.Is6():
				_ = b.AAAAResource(res, dnsmessage.AAAAResource{AAAA: addr.As16()})
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// TestWebhookSSRF: a requester cannot make Pulse reach what the guard refuses, by address,
// by a host name that resolves to one, by a redirect, or by a URL the guard would not see
// whole. Nothing refused reaches a receiver.
func TestWebhookSSRF(t *testing.T) {
	t.Parallel()
	resolver := fakeDNS(t, map[string]netip.Addr{
		"internal.pulse.test.":        netip.MustParseAddr("10.20.30.40"),
		"docs.pulse.test.":            netip.MustParseAddr("192.0.2.2"),
		"metadata.pulse.test.":        netip.MustParseAddr("169.254.169.254"),
		"site-local.pulse.test.":      netip.MustParseAddr("fec0::1"),
		"loopback.pulse.test.":        netip.MustParseAddr("127.0.0.1"),
		"ipv4-compatible.pulse.test.": netip.MustParseAddr("::7f00:1"),
	})
	tests := map[string]struct {
		// to is the destination; {port} stands for the receiver's port.
		to           string
		allowPrivate bool
		// redirectTo, when set, makes the receiver answer 302 to it.
		redirectTo func(second string) string
		wantStatus int    // the receiver's answer, 0 when none may come
		wantErr    string // what the error says
		refused    bool   // the error is a refused destination
	}{
		"name resolving to a private address": {
			to: "http://internal.pulse.test:{port}/hook", refused: true,
			wantErr: "webhook destination 10.20.30.40 is a private address",
		},
		"name resolving to a documentation address": {
			to: "http://docs.pulse.test:{port}/hook", refused: true,
			wantErr: "webhook destination 192.0.2.2",
		},
		"name resolving to loopback, where the receiver listens": {
			to: "http://loopback.pulse.test:{port}/hook", refused: true,
			wantErr: "webhook destination 127.0.0.1 is a loopback address",
		},
		"name resolving to site-local":               {to: "http://site-local.pulse.test:{port}/hook", refused: true},
		"name resolving to IPv4-compatible loopback": {to: "http://ipv4-compatible.pulse.test:{port}/hook", refused: true},
		"name resolving to metadata, private allowed": {
			to:           "http://metadata.pulse.test:{port}/latest",
			allowPrivate: true, refused: true, wantErr: "metadata addresses are never allowed",
		},
		"IPv4-compatible loopback literal": {to: "http://[::127.0.0.1]:{port}/hook", refused: true},
		"documentation address literal":    {to: "http://192.0.2.2:{port}/hook", refused: true},
		"redirect to a private address": {
			to:           "http://127.0.0.1:{port}/hook",
			allowPrivate: true,
			redirectTo:   func(second string) string { return second + "/internal" },
			wantStatus:   http.StatusFound, wantErr: "redirects are not followed",
		},
		"redirect to metadata": {
			to:           "http://127.0.0.1:{port}/hook",
			allowPrivate: true,
			redirectTo:   func(string) string { return "http://169.254.169.254/latest/meta-data/" },
			wantStatus:   http.StatusFound, wantErr: "redirects are not followed",
		},
		"credentials in the url": {
			to:           "http://user:" + secretToken + "@127.0.0.1:{port}/hook",
			allowPrivate: true, wantErr: "carries credentials",
		},
		"port above 65535": {
			to:           "http://127.0.0.1:99999/hook",
			allowPrivate: true, wantErr: "port must be between 1 and 65535",
		},
		"port zero": {
			to:           "http://127.0.0.1:0/hook",
			allowPrivate: true, wantErr: "port must be between 1 and 65535",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			second, _, secondCalls := receiver(t, answer(http.StatusOK, nil))
			respond := answer(http.StatusOK, nil)
			if tt.redirectTo != nil {
				respond = func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, tt.redirectTo(second.URL), http.StatusFound)
				}
			}
			first, _, calls := receiver(t, respond)
			_, port, err := net.SplitHostPort(first.Listener.Addr().String())
			require.NoError(t, err)
			w := b.webhook(t, channel.WebhookConfig{Resolver: resolver}, !tt.allowPrivate)

			got := w.Send(context.Background(), channel.Message{NotificationID: "ntf_ssrf", To: strings.ReplaceAll(tt.to, "{port}", port)})

			require.Equal(t, channel.Permanent, got.Outcome, "%v", got.Err)
			require.Equal(t, tt.wantStatus, got.StatusCode)
			require.ErrorContains(t, got.Err, tt.wantErr)
			if tt.refused {
				require.ErrorIs(t, got.Err, channel.ErrPrivateDestination)
			}
			requireNoLeak(t, got.Err)
			wantCalls := int32(0)
			if tt.wantStatus != 0 {
				wantCalls = 1
			}
			require.Equal(t, wantCalls, calls.Load(), "calls to the named receiver")
			require.Zero(t, secondCalls.Load(), "a redirect target is never called")
		})
	}
}
