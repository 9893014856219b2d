package ctl_test

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/ctl"
	"github.com/trellis-mesh/trellis/internal/testing/netns"
	"github.com/trellis-mesh/trellis/internal/transparentproxy"
)

// runCtl runs trellisctl in-process with args.
func runCtl(args ...string) result {
	var out, errb bytes.Buffer
	code := ctl.Run(context.Background(), ctl.Options{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func TestInstallTransparentProxyDryRun(t *testing.T) {
	r := runCtl("install", "transparent-proxy", "--dry-run", "--kuma-dp-uid", "5678", "--redirect-dns",
		"--redirect-inbound-port", "16006", "--exclude-inbound-ports", "22,9901", "--exclude-outbound-ports", "5432",
		"--exclude-outbound-uids", "1000", "--exclude-outbound-ips", "10.1.0.0/16,fd00::1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res, err := transparentproxy.Config{
		DPUser: "5678", RedirectDNS: true, RedirectPortInbound: 16006,
		ExcludeInboundPorts: []uint16{22, 9901}, ExcludeOutboundPorts: []uint16{5432}, ExcludeOutboundUIDs: []uint32{1000},
		ExcludeOutboundIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::1/128")},
	}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if want := res.RestoreInput(transparentproxy.IPv4) + res.RestoreInput(transparentproxy.IPv6); r.stdout != want {
		t.Fatalf("dry-run printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = runCtl("install", "transparent-proxy", "--dry-run", "--dp-uid", "5678", "--ip-family-mode", "ipv4")
	if r.code != 0 || strings.Contains(r.stdout, "IPv6") || !strings.Contains(r.stdout, "IPv4") {
		t.Fatalf("ipv4 mode: exit %d, printed:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestInstallTransparentProxyFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--dp-uid", "abc"}, "--dp-uid:"},
		{[]string{"--dp-uid", "0"}, "--dp-user: the sidecar must not run as root"},
		{[]string{"--dp-uid", "7", "--dp-user", "x"}, "--dp-uid and --dp-user"},
		{[]string{"--dp-user", "no-such-user-trellis"}, "--dp-user: user \"no-such-user-trellis\" not found"},
		{[]string{"--dp-uid", "7", "--redirect-inbound-port", "0"}, "--redirect-inbound-port: 0 is not a valid port"},
		{[]string{"--dp-uid", "7", "--redirect-inbound-port", "70000"}, "--redirect-inbound-port"},
		{[]string{"--dp-uid", "7", "--redirect-outbound-port", "15006"}, "--redirect-outbound-port: port 15006 is also --redirect-inbound-port"},
		{[]string{"--dp-uid", "7", "--exclude-inbound-ports", "22,ssh"}, "--exclude-inbound-ports: \"ssh\" is not a port"},
		{[]string{"--dp-uid", "7", "--exclude-outbound-ports", "0"}, "--exclude-outbound-ports: \"0\" is not a port"},
		{[]string{"--dp-uid", "7", "--exclude-outbound-uids", "me"}, "--exclude-outbound-uids: \"me\" is not a uid"},
		{[]string{"--dp-uid", "7", "--exclude-inbound-ips", "10.0.0.0/40"}, "--exclude-inbound-ips:"},
		{[]string{"--dp-uid", "7", "--ip-family-mode", "ipv6"}, "--ip-family-mode: \"ipv6\" is not one of dualstack, ipv4"},
	}
	for _, c := range cases {
		r := runCtl(append([]string{"install", "transparent-proxy", "--dry-run"}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

func TestInstallUninstallTransparentProxyInNamespace(t *testing.T) {
	ns := netns.New(t)
	save := func() string {
		var b strings.Builder
		for _, bin := range []string{"iptables-save", "ip6tables-save"} {
			for _, l := range strings.Split(ns.MustExec(t, bin), "\n") {
				if !strings.HasPrefix(l, "#") {
					b.WriteString(l + "\n")
				}
			}
		}
		return b.String()
	}
	inNS := func(args ...string) result {
		var r result
		if err := ns.Do(func() error { r = runCtl(args...); return nil }); err != nil {
			t.Fatal(err)
		}
		if r.code != 0 {
			t.Fatalf("trellisctl %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	before := save()
	inNS("install", "transparent-proxy", "--dp-uid", "5678", "--dry-run")
	if s := save(); s != before {
		t.Fatalf("install --dry-run changed the rules:\n%s", s)
	}
	install := []string{"install", "transparent-proxy", "--dp-uid", "5678", "--redirect-dns"}
	r := inNS(install...)
	if !strings.Contains(r.stdout, "transparent proxy installed (IPv4)") {
		t.Fatalf("install printed %q", r.stdout)
	}
	once := save()
	if !strings.Contains(once, "-A OUTPUT -p tcp -j TRELLIS_OUTBOUND") {
		t.Fatalf("no rules after install:\n%s", once)
	}
	inNS(install...)
	if twice := save(); twice != once {
		t.Fatalf("second install changed the rules:\n%s\nwas:\n%s", twice, once)
	}
	r = inNS("uninstall", "transparent-proxy", "--dry-run")
	if !strings.Contains(r.stdout, "-D OUTPUT -p tcp -j TRELLIS_OUTBOUND") || !strings.Contains(r.stdout, "-X TRELLIS_DNS") {
		t.Fatalf("uninstall --dry-run printed:\n%s", r.stdout)
	}
	if s := save(); s != once {
		t.Fatalf("uninstall --dry-run changed the rules:\n%s", s)
	}
	inNS("uninstall", "transparent-proxy")
	if after := save(); after != before {
		t.Fatalf("uninstall left:\n%s\nbefore install:\n%s", after, before)
	}
}
