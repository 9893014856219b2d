package transparentproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testing/netns"
	tp "github.com/trellis-mesh/trellis/internal/transparentproxy"
	"github.com/trellis-mesh/trellis/internal/transparentproxy/origdst"
)

// The test binary doubles as a client process run as another uid:
// TRELLIS_TP_CLIENT=tcp|udp and TRELLIS_TP_ADDR=host:port make it dial,
// print what the server answered and exit.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TRELLIS_TP_CLIENT"); mode != "" {
		os.Exit(client(mode, os.Getenv("TRELLIS_TP_ADDR")))
	}
	os.Exit(m.Run())
}

func client(network, addr string) int {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	if network == "udp" {
		if _, err := c.Write([]byte("query")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		got = buf[:n]
	} else if got, err = io.ReadAll(c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Print(string(got))
	return 0
}

// outputIn runs cmd inside ns and returns its combined output.
func outputIn(ns *netns.NS, cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := ns.Run(cmd)
	return out.String(), err
}

// clientBinary copies the test binary where any uid can run it.
func clientBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "trellis-tp-client-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// serveTCP answers every connection with name and the connection's
// original destination (or its local address when it was not redirected).
func serveTCP(t *testing.T, ns *netns.NS, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dst, err := origdst.OriginalDst(c.(*net.TCPConn))
			if err != nil {
				dst = netip.MustParseAddrPort(c.LocalAddr().String())
			}
			fmt.Fprintf(c, "%s %s", name, netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()))
			c.Close()
		}
	}()
}

// serveUDP answers every datagram with name.
func serveUDP(t *testing.T, ns *netns.NS, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
}

const (
	dpUID  = 5678 // the sidecar's uid
	appUID = 1000 // the application's uid
)

// TestRedirect installs the rules in a namespace ("host") wired to a
// second one ("remote") and checks where connections of the application
// and of the sidecar land, for IPv4 and (if the kernel has it) IPv6.
func TestRedirect(t *testing.T) {
	netns.Require(t)
	bin := clientBinary(t)
	for _, family := range []int{4, 6} {
		t.Run(fmt.Sprintf("IPv%d", family), func(t *testing.T) {
			if family == 6 {
				netns.RequireIPv6(t)
			}
			testRedirect(t, bin, family)
		})
	}
}

func testRedirect(t *testing.T, bin string, family int) {
	host, remote := netns.New(t), netns.New(t)
	subnet := netip.MustParsePrefix("10.66.0.0/24")
	if family == 6 {
		subnet = netip.MustParsePrefix("fd00:7472:66::/64")
	}
	lh, lr := netns.Veth(t, host, remote, []netip.Prefix{netns.Host(subnet, 1)}, []netip.Prefix{netns.Host(subnet, 2)})
	hostIP, remoteIP := lh.Addr(family), lr.Addr(family)
	at := func(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

	// The sidecar's listeners in host, the real servers in remote and host.
	serveTCP(t, host, ":15001", "outbound")
	serveTCP(t, host, ":15006", "inbound")
	serveTCP(t, host, ":15053", "dns-tcp")
	// A UDP server must bind the loopback address REDIRECT sends to
	// (127.0.0.1 or ::1): from a wildcard socket the reply would leave
	// from the host's address, which conntrack cannot map back.
	serveUDP(t, host, at(lo(family), 15053), "dns-udp")
	serveTCP(t, remote, ":80", "remote")
	serveTCP(t, remote, ":5432", "remote")
	serveTCP(t, remote, ":53", "real-dns-tcp")
	serveUDP(t, remote, ":53", "real-dns-udp")
	serveTCP(t, host, ":9000", "app")
	serveTCP(t, host, ":2222", "sshd")

	install(t, host, tp.Config{
		DPUser: fmt.Sprint(dpUID), RedirectDNS: true,
		ExcludeInboundPorts: []uint16{2222}, ExcludeOutboundPorts: []uint16{5432},
	}, false)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(uid uint32, network, addr string) string {
		t.Helper()
		cmd := netns.AsUser(exec.CommandContext(ctx, bin), uid, uid)
		cmd.Env = append(os.Environ(), "TRELLIS_TP_CLIENT="+network, "TRELLIS_TP_ADDR="+addr)
		out, err := outputIn(host, cmd)
		if err != nil {
			t.Fatalf("uid %d dialling %s %s: %v: %s", uid, network, addr, err, out)
		}
		return out
	}
	cases := []struct {
		name         string
		uid          uint32
		network, dst string
		want         string
	}{
		{"app outbound is redirected", appUID, "tcp", at(remoteIP, 80), "outbound " + at(remoteIP, 80)},
		{"sidecar outbound is not", dpUID, "tcp", at(remoteIP, 80), "remote " + at(remoteIP, 80)},
		{"excluded outbound port", appUID, "tcp", at(remoteIP, 5432), "remote " + at(remoteIP, 5432)},
		{"app to its own host over lo stays direct", appUID, "tcp", at(hostIP, 9000), "app " + at(hostIP, 9000)},
		{"sidecar to its own host goes inbound", dpUID, "tcp", at(hostIP, 9000), "inbound " + at(hostIP, 9000)},
		{"app to loopback stays direct", appUID, "tcp", at(lo(family), 9000), "app " + at(lo(family), 9000)},
		{"app DNS over UDP", appUID, "udp", at(remoteIP, 53), "dns-udp"},
		{"app DNS over TCP", appUID, "tcp", at(remoteIP, 53), "dns-tcp " + at(remoteIP, 53)},
		{"sidecar DNS over UDP reaches the resolver", dpUID, "udp", at(remoteIP, 53), "real-dns-udp"},
		{"sidecar DNS over TCP reaches the resolver", dpUID, "tcp", at(remoteIP, 53), "real-dns-tcp " + at(remoteIP, 53)},
	}
	for _, c := range cases {
		if got := dial(c.uid, c.network, c.dst); got != c.want {
			t.Errorf("%s: uid %d %s %s answered %q, want %q", c.name, c.uid, c.network, c.dst, got, c.want)
		}
	}

	// Inbound, from the remote host: redirected except the excluded port.
	for _, c := range []struct{ port uint16 }{{9000}, {2222}} {
		var conn net.Conn
		if err := remote.Do(func() (err error) {
			conn, err = net.DialTimeout("tcp", at(hostIP, c.port), 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(conn)
		conn.Close()
		want := "inbound " + at(hostIP, c.port)
		if c.port == 2222 {
			want = "sshd " + at(hostIP, 2222)
		}
		if err != nil || string(got) != want {
			t.Errorf("inbound to port %d answered %q (%v), want %q", c.port, got, err, want)
		}
	}
}

func lo(family int) netip.Addr {
	if family == 6 {
		return netip.IPv6Loopback()
	}
	return netip.MustParseAddr("127.0.0.1")
}
