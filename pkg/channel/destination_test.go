package channel

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDestinationKind(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		addr string
		want string // "" means public, allowed
	}{
		"IPv4 loopback":               {"127.0.0.1", kindLoopback},
		"IPv4 loopback, whole block":  {"127.255.0.9", kindLoopback},
		"IPv6 loopback":               {"::1", kindLoopback},
		"IPv4-mapped loopback":        {"::ffff:127.0.0.1", kindLoopback},
		"NAT64 of loopback":           {"64:ff9b::7f00:1", kindLoopback},
		"RFC 1918 10/8":               {"10.1.2.3", kindPrivate},
		"RFC 1918 172.16/12":          {"172.16.0.1", kindPrivate},
		"RFC 1918 172.16/12, top":     {"172.31.255.255", kindPrivate},
		"just past 172.16/12":         {"172.32.0.1", ""},
		"RFC 1918 192.168/16":         {"192.168.1.1", kindPrivate},
		"IPv4-mapped private":         {"::ffff:10.0.0.1", kindPrivate},
		"unique local":                {"fd12:3456::1", kindPrivate},
		"AWS metadata":                {"169.254.169.254", kindMetadata},
		"AWS ECS task metadata":       {"169.254.170.2", kindMetadata},
		"AWS metadata over IPv6":      {"fd00:ec2::254", kindMetadata},
		"Azure platform agent":        {"168.63.129.16", kindMetadata},
		"Alibaba metadata":            {"100.100.100.200", kindMetadata},
		"IPv4-mapped metadata":        {"::ffff:169.254.169.254", kindMetadata},
		"NAT64 of metadata":           {"64:ff9b::a9fe:a9fe", kindMetadata},
		"IPv4 link-local":             {"169.254.1.1", kindLinkLocal},
		"IPv6 link-local":             {"fe80::1", kindLinkLocal},
		"IPv6 link-local with zone":   {"fe80::1%eth0", kindLinkLocal},
		"CGNAT":                       {"100.64.0.1", kindShared},
		"CGNAT, top":                  {"100.127.255.254", kindShared},
		"IPv4 unspecified":            {"0.0.0.0", kindUnspecified},
		"this network":                {"0.1.2.3", kindUnspecified},
		"IPv6 unspecified":            {"::", kindUnspecified},
		"IPv4 multicast":              {"224.0.0.1", kindMulticast},
		"IPv6 multicast":              {"ff02::1", kindMulticast},
		"broadcast":                   {"255.255.255.255", kindReserved},
		"future use":                  {"240.0.0.1", kindReserved},
		"benchmarking":                {"198.18.0.1", kindReserved},
		"IPv6 site-local":             {"fec0::1", kindReserved},
		"Google DNS":                  {"8.8.8.8", ""},
		"Google DNS over IPv6":        {"2001:4860:4860::8888", ""},
		"IPv4-mapped public":          {"::ffff:8.8.8.8", ""},
		"NAT64 of public":             {"64:ff9b::808:808", ""},
		"public next to CGNAT":        {"100.128.0.1", ""},
		"public next to link-local":   {"169.255.0.1", ""},
		"public next to 192.168/16":   {"192.169.0.1", ""},
		"IPv6 outside global unicast": {"fe00::1", kindReserved},

		// The IANA special-purpose registries, beyond the named blocks.
		"documentation TEST-NET-1":             {"192.0.2.2", kindReserved},
		"documentation TEST-NET-2":             {"198.51.100.7", kindReserved},
		"documentation TEST-NET-3":             {"203.0.113.250", kindReserved},
		"IETF protocol assignments":            {"192.0.0.170", kindReserved},
		"6to4 relay anycast":                   {"192.88.99.1", kindReserved},
		"AS112":                                {"192.31.196.1", kindReserved},
		"benchmarking, top":                    {"198.19.255.255", kindReserved},
		"IPv6 documentation":                   {"2001:db8::1", kindReserved},
		"IPv6 documentation, RFC 9637":         {"3fff::1", kindReserved},
		"IPv4-compatible loopback":             {"::127.0.0.1", kindReserved},
		"IPv4-compatible public":               {"::8.8.8.8", kindReserved},
		"6to4 embedding a private address":     {"2002:c0a8:101::1", kindReserved},
		"6to4 embedding a public address":      {"2002:808:808::1", kindReserved},
		"Teredo":                               {"2001:0:4136:e378:8000:63bf:3fff:fdd2", kindReserved},
		"IPv4-mapped documentation":            {"::ffff:192.0.2.2", kindReserved},
		"NAT64 of documentation":               {"64:ff9b::c000:202", kindReserved},
		"public next to documentation":         {"192.0.3.1", ""},
		"public next to benchmarking":          {"198.20.0.1", ""},
		"public IPv6 next to 6to4":             {"2003::1", ""},
		"public IPv6 next to IETF assignments": {"2001:200::1", ""},
	}
	g := newDestinationGuard(false, nil)
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			require.Equal(t, tt.want, g.kind(netip.MustParseAddr(tt.addr)))
		})
	}
}

func TestDestinationGuardCheck(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		allowPrivate bool
		addr         string
		wantErr      string // "" means allowed
	}{
		"public": {
			addr: "8.8.8.8",
		},
		"loopback refused": {
			addr: "127.0.0.1",
			wantErr: "webhook destination 127.0.0.1 is a loopback address; " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"mapped address named as IPv4": {
			addr: "::ffff:192.168.1.1",
			wantErr: "webhook destination 192.168.1.1 is a private address; " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"zone dropped from the message": {
			addr: "fe80::1%eth0",
			wantErr: "webhook destination fe80::1 is a link-local address; " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"metadata refused": {
			addr:    "169.254.169.254",
			wantErr: "webhook destination 169.254.169.254 is a cloud metadata address; metadata addresses are never allowed",
		},
		"this host's address": {
			addr: "9.9.9.9",
			wantErr: "webhook destination 9.9.9.9 is an address of this host; " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"this host's address, mapped": {
			addr: "::ffff:9.9.9.9",
			wantErr: "webhook destination 9.9.9.9 is an address of this host; " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"documentation refused": {
			addr: "203.0.113.9",
			wantErr: "webhook destination 203.0.113.9 is a special-purpose address (IANA registry); " +
				"set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		},
		"this host's address allowed when private is": {
			allowPrivate: true,
			addr:         "9.9.9.9",
		},
		"loopback allowed when private is": {
			allowPrivate: true,
			addr:         "127.0.0.1",
		},
		"link-local allowed when private is": {
			allowPrivate: true,
			addr:         "169.254.1.1",
		},
		"metadata refused even when private is allowed": {
			allowPrivate: true,
			addr:         "fd00:ec2::254",
			wantErr:      "webhook destination fd00:ec2::254 is a cloud metadata address; metadata addresses are never allowed",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			err := newDestinationGuard(tt.allowPrivate, []netip.Addr{netip.MustParseAddr("9.9.9.9")}).check(netip.MustParseAddr(tt.addr))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
			require.ErrorIs(t, err, ErrPrivateDestination)
			var dest *destinationError
			require.True(t, errors.As(err, &dest))
		})
	}
}

func TestDestinationGuardControl(t *testing.T) {
	t.Parallel()

	g := newDestinationGuard(false, nil)
	require.NoError(t, g.control("tcp4", "8.8.8.8:443", nil))
	require.ErrorIs(t, g.control("tcp6", "[::1]:80", nil), ErrPrivateDestination)
	require.ErrorIs(t, g.control("tcp6", "[fe80::1%eth0]:80", nil), ErrPrivateDestination)
	require.ErrorIs(t, g.control("tcp", "localhost:80", nil), ErrPrivateDestination, "an unresolved address fails closed")
}

// TestHostAddressesRefused: every address of this host's interfaces is refused, whatever
// range it is in.
func TestHostAddressesRefused(t *testing.T) {
	t.Parallel()
	host, err := hostAddrs()
	require.NoError(t, err)
	require.NotEmpty(t, host)
	g := newDestinationGuard(false, host)
	for _, a := range host {
		require.ErrorIs(t, g.check(a), ErrPrivateDestination, "%s", a)
	}
}

func netip4(a, b, c, d byte) netip.Addr {
	return netip.AddrFrom4([4]byte{a, b, c, d})
}
