package channel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"code.dny.dev/ssrf"
)

// ErrPrivateDestination reports a webhook refused because the address it would connect to is
// not a public one: loopback, private, link-local, cloud metadata and the like.
var ErrPrivateDestination = errors.New("webhook destination is not public")

// destinationError is the refusal of one address. Its message names the address, what kind
// it is and how to allow it, so an operator can act on it from the notification's last error.
type destinationError struct {
	addr netip.Addr
	kind string // a phrase such as "a loopback address"
}

func (e *destinationError) Error() string {
	if e.kind == kindMetadata {
		return fmt.Sprintf("webhook destination %s is %s; metadata addresses are never allowed", e.addr, e.kind)
	}
	return fmt.Sprintf("webhook destination %s is %s; set PULSE_WEBHOOK_ALLOW_PRIVATE=true to allow private destinations",
		e.addr, e.kind)
}

// Is makes errors.Is(err, ErrPrivateDestination) true.
func (e *destinationError) Is(target error) bool {
	return target == ErrPrivateDestination
}

// Kinds of non-public address, as destinationKind names them.
const (
	kindMetadata    = "a cloud metadata address"
	kindUnspecified = "an unspecified address"
	kindLoopback    = "a loopback address"
	kindPrivate     = "a private address"
	kindLinkLocal   = "a link-local address"
	kindMulticast   = "a multicast address"
	kindShared      = "a shared (CGNAT) address"
	kindHost        = "an address of this host"
	kindReserved    = "a special-purpose address (IANA registry)"
)

// addrRange is a block of addresses that are not public, and what kind they are.
type addrRange struct {
	prefix netip.Prefix
	kind   string
}

// namedRanges names the commonest non-public blocks, so that a refusal says what kind of
// address it met; metadata addresses come first so they are named as such rather than as
// link-local or private. The block list itself is the IANA special-purpose address
// registries, as code.dny.dev/ssrf generates them from the registries' own files
// (iana-ipv4-special-registry, iana-ipv6-special-registry): registryKind refuses what they
// list, and every IPv6 address outside global unicast (2000::/3), which covers ::/128,
// ::1, the IPv4-compatible ::/96, site-local fec0::/10, unique local, link-local and
// multicast. 6to4 (2002::/16) and Teredo (2001::/32, in 2001::/23) are refused whole, so an
// IPv4 address embedded in them is never reached.
func namedRanges() []addrRange {
	r := func(prefix, kind string) addrRange {
		return addrRange{prefix: netip.MustParsePrefix(prefix), kind: kind}
	}
	return []addrRange{
		// Instance metadata and platform agents hand out credentials to whoever asks from
		// inside the instance.
		r("169.254.169.254/32", kindMetadata), // AWS, GCP, Azure, OCI, DigitalOcean
		r("169.254.170.2/32", kindMetadata),   // AWS ECS task metadata
		r("169.254.170.23/32", kindMetadata),  // AWS EKS pod identity
		r("168.63.129.16/32", kindMetadata),   // Azure platform agent, a public address
		r("100.100.100.200/32", kindMetadata), // Alibaba Cloud
		r("fd00:ec2::254/128", kindMetadata),  // AWS over IPv6
		r("fd00:ec2::23/128", kindMetadata),   // AWS EKS pod identity over IPv6

		r("0.0.0.0/8", kindUnspecified), // "this network"; Linux connects 0.0.0.0 to itself
		r("::/128", kindUnspecified),
		r("127.0.0.0/8", kindLoopback),
		r("::1/128", kindLoopback),
		r("10.0.0.0/8", kindPrivate),
		r("172.16.0.0/12", kindPrivate),
		r("192.168.0.0/16", kindPrivate),
		r("fc00::/7", kindPrivate),
		r("64:ff9b:1::/48", kindPrivate), // local-use NAT64
		r("169.254.0.0/16", kindLinkLocal),
		r("fe80::/10", kindLinkLocal),
		r("224.0.0.0/4", kindMulticast),
		r("ff00::/8", kindMulticast),
		r("100.64.0.0/10", kindShared),
	}
}

// registryKind returns kindReserved when the IANA special-purpose registries, as
// code.dny.dev/ssrf carries them, set ip aside, and "" otherwise. ip is not IPv4-mapped.
func registryKind(ip netip.Addr) string {
	if ip.Is6() && !ssrf.IPv6GlobalUnicast.Contains(ip) {
		return kindReserved
	}
	denied := ssrf.IPv4DeniedPrefixes
	if ip.Is6() {
		denied = ssrf.IPv6DeniedPrefixes
	}
	for _, p := range denied {
		if p.Contains(ip) {
			return kindReserved
		}
	}
	return ""
}

// destinationGuard decides which addresses webhooks may connect to.
type destinationGuard struct {
	allowPrivate bool
	ranges       []addrRange
	// host holds this host's own interface addresses: a receiver on this machine is not
	// one a requester may name, whatever range its address is in.
	host map[netip.Addr]bool
}

// newDestinationGuard returns a guard that refuses every non-public address and the
// addresses in host, or when allowPrivate only metadata addresses.
func newDestinationGuard(allowPrivate bool, host []netip.Addr) destinationGuard {
	g := destinationGuard{allowPrivate: allowPrivate, ranges: namedRanges(), host: map[netip.Addr]bool{}}
	for _, a := range host {
		g.host[a.WithZone("").Unmap()] = true
	}
	return g
}

// hostAddrs returns the addresses of this host's network interfaces.
func hostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// kind says what kind of non-public address ip is, or "" when it is public. IPv4 addresses
// written as IPv6 (::ffff:a.b.c.d, and 64:ff9b::a.b.c.d, which a NAT64 gateway forwards to
// a.b.c.d) are judged by the IPv4 address they reach.
func (g destinationGuard) kind(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	if nat64 := ssrf.IPv6NAT64Prefix; nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if !ip.IsValid() {
		return kindReserved
	}
	for _, r := range g.ranges {
		if r.prefix.Contains(ip) {
			return r.kind
		}
	}
	if g.host[ip] {
		return kindHost
	}
	return registryKind(ip)
}

// check returns a *destinationError when ip may not be connected to. Metadata addresses are
// refused even when private destinations are allowed: no webhook legitimately needs them.
func (g destinationGuard) check(ip netip.Addr) error {
	kind := g.kind(ip)
	if kind == "" || (g.allowPrivate && kind != kindMetadata) {
		return nil
	}
	return &destinationError{addr: ip.WithZone("").Unmap(), kind: kind}
}

// control is a net.Dialer Control function. It runs after name resolution, just before each
// connect, on the address actually dialled, so neither DNS rebinding nor a hostname that
// resolves to several addresses can slip a private one past it.
func (g destinationGuard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: the dialler only ever hands over resolved ip:port pairs.
		return fmt.Errorf("check webhook destination: %w: unexpected dial address", ErrPrivateDestination)
	}
	return g.check(ap.Addr())
}
