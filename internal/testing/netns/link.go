package netns

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Link is one end of a veth pair (or a bridge) with its addresses.
type Link struct {
	// NS is the namespace holding the interface (nil: the root namespace).
	NS *NS
	// Name is the interface name (at most 15 bytes, unique on the host).
	Name string
	// Addrs are the interface's addresses with their prefix lengths.
	Addrs []netip.Prefix
}

// Addr returns the first address of the link in the given family (4 or 6),
// or the zero Addr if it has none.
func (l Link) Addr(family int) netip.Addr {
	for _, p := range l.Addrs {
		if (family == 4) == p.Addr().Is4() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// linkName returns a unique interface name with the given prefix.
func linkName(prefix string) string {
	return fmt.Sprintf("%s%d%03d", prefix, os.Getpid()%100000, seq.Add(1)%1000)
}

// Veth connects namespaces a and b (nil for the root namespace) with a veth
// pair, assigns aAddrs and bAddrs (IPv4 or IPv6 prefixes such as
// 10.7.0.1/24 and fd00::1/64; IPv6 addresses skip duplicate address
// detection so they are usable at once) and sets both ends up. The pair is
// removed when the test ends (with its namespace, or explicitly when an end
// is in the root namespace).
func Veth(t testing.TB, a, b *NS, aAddrs, bAddrs []netip.Prefix) (Link, Link) {
	t.Helper()
	Require(t)
	la := Link{NS: a, Name: linkName("tva"), Addrs: aAddrs}
	lb := Link{NS: b, Name: linkName("tvb"), Addrs: bAddrs}
	mustIP(t, "link", "add", la.Name, "type", "veth", "peer", "name", lb.Name)
	t.Cleanup(func() {
		// Deleting one end deletes the pair; it is already gone when
		// both ends were in namespaces that were deleted.
		_ = exec.Command("ip", "link", "del", la.Name).Run()
	})
	setUp(t, la)
	setUp(t, lb)
	return la, lb
}

// setUp moves l into its namespace, adds its addresses and sets it up.
func setUp(t testing.TB, l Link) {
	t.Helper()
	if l.NS != nil {
		mustIP(t, "link", "set", l.Name, "netns", l.NS.Name)
	}
	configure(t, l)
}

// configure adds l's addresses and sets it up, in its namespace.
func configure(t testing.TB, l Link) {
	t.Helper()
	for _, p := range l.Addrs {
		args := []string{"ip", "addr", "add", p.String(), "dev", l.Name}
		if p.Addr().Is6() {
			args = append(args, "nodad")
		}
		l.NS.mustExecOrRoot(t, args...)
	}
	l.NS.mustExecOrRoot(t, "ip", "link", "set", l.Name, "up")
}

// mustExecOrRoot runs a command in ns, or in the root namespace for nil.
func (ns *NS) mustExecOrRoot(t testing.TB, args ...string) {
	t.Helper()
	if ns == nil {
		mustIP(t, args[1:]...)
		return
	}
	ns.MustExec(t, args[0], args[1:]...)
}

// Bridge is a Linux bridge that namespaces attach to with Attach: a small
// switched network ("the LAN") between test hosts.
type Bridge struct {
	Link
}

// NewBridge creates a bridge in ns (nil: the root namespace, so processes
// on the host reach the attached namespaces) with the given addresses, up,
// and deletes it when the test ends. Where br_netfilter is loaded, traffic
// between namespaces on a root-namespace bridge crosses the host's
// iptables FORWARD chain (a Docker host drops it); a bridge in a namespace
// of its own avoids that.
func NewBridge(t testing.TB, ns *NS, addrs []netip.Prefix) *Bridge {
	t.Helper()
	Require(t)
	br := &Bridge{Link{NS: ns, Name: linkName("tbr"), Addrs: addrs}}
	ns.mustExecOrRoot(t, "ip", "link", "add", br.Name, "type", "bridge")
	if ns == nil {
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br.Name).Run() })
	}
	configure(t, br.Link) // created where it stays: a bridge cannot change namespace
	return br
}

// Attach connects ns to the bridge with a veth pair whose namespace end
// gets addrs, and returns that end.
func (br *Bridge) Attach(t testing.TB, ns *NS, addrs []netip.Prefix) Link {
	t.Helper()
	la, lb := Veth(t, ns, br.NS, addrs, nil)
	br.NS.mustExecOrRoot(t, "ip", "link", "set", lb.Name, "master", br.Name)
	return la
}

// Route adds a route in ns (nil: root): `ip route add <dst> via <via>`
// (dst may be "default").
func Route(t testing.TB, ns *NS, dst string, via netip.Addr) {
	t.Helper()
	args := []string{"ip"}
	if via.Is6() {
		args = append(args, "-6")
	}
	ns.mustExecOrRoot(t, append(args, "route", "add", dst, "via", via.String())...)
}

// Subnet4 returns a random /24 under 10.0.0.0/8 (second octet 100-199)
// that no interface of the root namespace uses, so concurrent test
// processes rarely pick the same one. Host n of it is Subnet4().Addr()+n.
func Subnet4(t testing.TB) netip.Prefix {
	t.Helper()
	used, _ := exec.Command("ip", "-4", "addr", "show").Output()
	for range 100 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + rand.IntN(100)), byte(rand.IntN(256)), 0}), 24)
		if !strings.Contains(string(used), strings.TrimSuffix(p.Addr().String(), ".0")+".") {
			return p
		}
	}
	t.Fatal("netns: no free 10.x.y.0/24 subnet found")
	return netip.Prefix{}
}

// Subnet6 returns a random /64 under fd00:7472::/32 (a unique local range).
func Subnet6(t testing.TB) netip.Prefix {
	t.Helper()
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0xfd, 0x00, 0x74, 0x72
	b[4], b[5], b[6], b[7] = byte(rand.IntN(256)), byte(rand.IntN(256)), byte(rand.IntN(256)), byte(rand.IntN(256))
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// Host returns the n-th address of subnet p with p's prefix length
// (Host(10.1.2.0/24, 5) = 10.1.2.5/24).
func Host(p netip.Prefix, n int) netip.Prefix {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return netip.PrefixFrom(a, p.Bits())
}
