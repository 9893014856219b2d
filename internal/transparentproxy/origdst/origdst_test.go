package origdst_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testing/netns"
	"github.com/trellis-mesh/trellis/internal/transparentproxy/origdst"
)

// redirected installs a nat OUTPUT REDIRECT of TCP to dst's port onto
// port 15001 in a fresh namespace, dials dst and returns what OriginalDst
// says about the accepted connection.
func redirected(t *testing.T, family int, local, dst netip.AddrPort) netip.AddrPort {
	ns := netns.New(t)
	bin := "iptables"
	if family == 6 {
		bin = "ip6tables"
	}
	// A veth to a second namespace gives this one a route to dst.
	peer := netns.New(t)
	bits := 24
	if family == 6 {
		bits = 64
	}
	la, _ := netns.Veth(t, ns, peer, []netip.Prefix{netip.PrefixFrom(local.Addr(), bits)}, nil)
	if family == 6 {
		ns.MustExec(t, "ip", "-6", "route", "add", "default", "dev", la.Name)
	} else {
		ns.MustExec(t, "ip", "route", "add", "default", "dev", la.Name)
	}
	ns.MustExec(t, bin, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "80", "-j", "REDIRECT", "--to-ports", "15001")

	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", ":15001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", dst.String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		defer sc.Close()
		got, err := origdst.OriginalDst(sc.(*net.TCPConn))
		if err != nil {
			t.Fatal(err)
		}
		return got
	case <-time.After(5 * time.Second):
		t.Fatal("the redirected connection was not accepted within 5 s")
	}
	return netip.AddrPort{}
}

func TestOriginalDstIPv4(t *testing.T) {
	netns.Require(t)
	dst := netip.MustParseAddrPort("10.77.0.9:80")
	if got := redirected(t, 4, netip.MustParseAddrPort("10.77.0.1:0"), dst); got != dst {
		t.Fatalf("OriginalDst = %v, want %v", got, dst)
	}
}

func TestOriginalDstIPv6(t *testing.T) {
	netns.RequireIPv6(t)
	dst := netip.MustParseAddrPort("[fd00:7472::9]:80")
	if got := redirected(t, 6, netip.MustParseAddrPort("[fd00:7472::1]:0"), dst); got != dst {
		t.Fatalf("OriginalDst = %v, want %v", got, dst)
	}
}

func TestOriginalDstNotRedirected(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	got, err := origdst.OriginalDst(sc.(*net.TCPConn))
	if err == nil {
		// Without conntrack state the kernel may also answer the local
		// address itself (nf_conntrack loaded, no NAT): accept that.
		if got.String() != ln.Addr().String() {
			t.Fatalf("OriginalDst = %v, want an error or %v", got, ln.Addr())
		}
		return
	}
	if !errors.Is(err, origdst.ErrNotRedirected) && !strings.Contains(err.Error(), "SO_ORIGINAL_DST") {
		t.Fatalf("error = %v, want ErrNotRedirected", err)
	}
}
