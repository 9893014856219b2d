package transparentproxy_test

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testing/netns"
	tp "github.com/trellis-mesh/trellis/internal/transparentproxy"
)

// counters matches the packet:byte counters of chain lines.
var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// saveAll returns iptables-save and ip6tables-save output of ns without
// comments and counters.
func saveAll(t *testing.T, ns *netns.NS) string {
	t.Helper()
	var b strings.Builder
	for _, bin := range []string{"iptables-save", "ip6tables-save"} {
		b.WriteString("## " + bin + "\n")
		for _, l := range strings.Split(ns.MustExec(t, bin), "\n") {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			b.WriteString(counters.ReplaceAllString(l, "[0:0]") + "\n")
		}
	}
	return b.String()
}

// install runs Install (or Uninstall) inside ns.
func install(t *testing.T, ns *netns.NS, c tp.Config, uninstall bool) tp.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res tp.Result
	err := ns.Do(func() (err error) {
		if uninstall {
			res, err = tp.Installer{Log: quiet}.Uninstall(ctx, c)
		} else {
			res, err = tp.Installer{Log: quiet}.Install(ctx, c)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// preexisting are unrelated rules a namespace may hold before install.
const preexisting4 = `*filter
:INPUT ACCEPT [0:0]
:USER_FILTER - [0:0]
-A INPUT -p tcp -m tcp --dport 9 -j DROP
-A INPUT -j USER_FILTER
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:USER_NAT - [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j USER_NAT
-A OUTPUT -d 10.200.0.1/32 -p tcp -j USER_NAT
-A USER_NAT -p tcp -j REDIRECT --to-ports 9090
-A POSTROUTING -o lo -j ACCEPT
COMMIT
`

const preexisting6 = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:USER_NAT6 - [0:0]
-A OUTPUT -d fd00:200::1/128 -p tcp -j USER_NAT6
COMMIT
`

func TestInstallTwiceUninstallLeavesNoTrace(t *testing.T) {
	netns.Require(t)
	cfg := tp.Config{DPUser: "5678", RedirectDNS: true, ExcludeInboundPorts: []uint16{22}}
	for _, pre := range []string{"fresh", "preexisting"} {
		t.Run(pre, func(t *testing.T) {
			ns := netns.New(t)
			if pre == "preexisting" {
				restoreIn(t, ns, "iptables-restore", preexisting4)
				if netns.AvailableIPv6() == nil {
					restoreIn(t, ns, "ip6tables-restore", preexisting6)
				}
			}
			before := saveAll(t, ns)
			res := install(t, ns, cfg, false)
			first := saveAll(t, ns)
			checkInstalled(t, first, cfg, res)
			install(t, ns, cfg, false)
			if second := saveAll(t, ns); second != first {
				t.Fatalf("a second install changed the rules:\n--- first\n%s--- second\n%s", first, second)
			}
			// Reinstalling with another config replaces the rules: no
			// DNS chains are left behind.
			install(t, ns, tp.Config{DPUser: "5678"}, false)
			if s := saveAll(t, ns); strings.Contains(s, tp.ChainDNS) {
				t.Fatalf("reinstall without DNS left DNS chains:\n%s", s)
			}
			// An IPv4-only install removes the IPv6 rules.
			install(t, ns, tp.Config{DPUser: "5678", IPFamilyMode: tp.IPFamilyIPv4}, false)
			s := saveAll(t, ns)
			if _, v6, _ := strings.Cut(s, "## ip6tables-save\n"); strings.Contains(v6, tp.ChainPrefix) {
				t.Fatalf("an IPv4-only install left IPv6 rules:\n%s", s)
			}
			if !strings.Contains(s, tp.ChainOutbound) {
				t.Fatalf("no IPv4 rules after an IPv4-only install:\n%s", s)
			}
			install(t, ns, cfg, true)
			if after := saveAll(t, ns); after != before {
				t.Fatalf("uninstall did not restore the rules:\n--- before install\n%s--- after uninstall\n%s", before, after)
			}
			// Uninstalling again has nothing to do.
			for _, fr := range install(t, ns, cfg, true) {
				if fr.Applied != "" {
					t.Fatalf("second uninstall applied:\n%s", fr.Applied)
				}
			}
		})
	}
}

// checkInstalled checks that iptables-save shows every rule of cfg.
func checkInstalled(t *testing.T, save string, cfg tp.Config, res tp.Result) {
	t.Helper()
	r, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	v4, v6, _ := strings.Cut(save, "## ip6tables-save\n")
	for _, fr := range res {
		if fr.Skipped != "" {
			t.Logf("!!! %s skipped: %s", fr.Family.Name, fr.Skipped)
			continue
		}
		s := v4
		if fr.Family.Name == "IPv6" {
			s = v6
		}
		for _, l := range append(r.ChainRules(fr.Family), r.Jumps()...) {
			if !strings.Contains(s, l+"\n") {
				t.Errorf("%s: iptables-save lacks %q:\n%s", fr.Family.Name, l, s)
			}
		}
	}
}

// restoreIn feeds rules to an iptables-restore binary inside ns.
func restoreIn(t *testing.T, ns *netns.NS, bin, rules string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := outputIn(ns, cmd); err != nil {
		t.Fatalf("%s: %v: %s", bin, err, out)
	}
}

// quiet discards the installer's log lines.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
