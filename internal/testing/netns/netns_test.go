package netns_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testing/netns"
)

func TestBridgeConnectsNamespaces(t *testing.T) {
	netns.Require(t)
	p4, p6 := netns.Subnet4(t), netns.Subnet6(t)
	br := netns.NewBridge(t, nil, []netip.Prefix{netns.Host(p4, 1), netns.Host(p6, 1)})
	a, b := netns.New(t), netns.New(t)
	la := br.Attach(t, a, []netip.Prefix{netns.Host(p4, 2), netns.Host(p6, 2)})
	lb := br.Attach(t, b, []netip.Prefix{netns.Host(p4, 3), netns.Host(p6, 3)})
	if la.Addr(4) != netns.Host(p4, 2).Addr() || lb.Addr(6) != netns.Host(p6, 3).Addr() {
		t.Fatalf("Link.Addr: %v %v", la.Addr(4), lb.Addr(6))
	}
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", ":7000"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	for _, to := range []netip.Addr{lb.Addr(4), lb.Addr(6)} {
		// From namespace a, and from the root namespace through the bridge.
		for _, from := range []*netns.NS{a, nil} {
			var c net.Conn
			err := from.Do(func() (err error) {
				c, err = net.DialTimeout("tcp", netip.AddrPortFrom(to, 7000).String(), 5*time.Second)
				return err
			})
			if err != nil {
				t.Fatalf("dial %v from %v: %v", to, from, err)
			}
			got, _ := io.ReadAll(c)
			c.Close()
			if string(got) != "hi" {
				t.Fatalf("from %v to %v: read %q", from, to, got)
			}
		}
	}
}

func TestStartAsUser(t *testing.T) {
	ns := netns.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := netns.AsUser(exec.CommandContext(ctx, "sh", "-c", "id -u; id -g; cat /proc/self/net/dev | wc -l"), 65534, 65534)
	var out strings.Builder
	cmd.Stdout = &out
	if err := ns.Run(cmd); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out.String())
	// A fresh namespace has only lo: two header lines plus one device.
	if len(f) != 3 || f[0] != "65534" || f[1] != "65534" || f[2] != "3" {
		t.Fatalf("uid, gid, /proc/net/dev lines = %q, want 65534 65534 3", out.String())
	}
}

func TestCommandSeesPrivateEtc(t *testing.T) {
	ns := netns.New(t)
	ns.WriteEtc(t, "resolv.conf", "nameserver 10.99.0.53\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := ns.CommandAs(ctx, 65534, 65534, "sh", "-c", "id -u; cat /etc/resolv.conf").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := string(out); got != "65534\nnameserver 10.99.0.53\n" {
		t.Fatalf("output %q", got)
	}
}
