package transparentproxy

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the generated rules (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRulesGolden(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"default", Config{DPUser: "5678"}},
		{"dns", Config{DPUser: "5678", RedirectDNS: true}},
		{"exclusions", Config{
			DPUser: "5678", RedirectDNS: true, RedirectPortInbound: 16006, RedirectPortOutbound: 16001, RedirectPortDNS: 16053,
			ExcludeInboundPorts:  []uint16{22, 9901, 22},
			ExcludeOutboundPorts: []uint16{5432, 443},
			ExcludeOutboundUIDs:  []uint32{1001, 1000},
			ExcludeInboundIPs:    []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("fd00:1::1/64")},
			ExcludeOutboundIPs: []netip.Prefix{netip.MustParsePrefix("192.168.1.7/24"), netip.MustParsePrefix("2001:db8::/32"),
				netip.MustParsePrefix("::ffff:172.16.0.0/108")},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := c.cfg.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range r.Families() {
				got := r.RestoreInput(f)
				if again := r.RestoreInput(f); again != got {
					t.Fatal("RestoreInput is not deterministic")
				}
				golden(t, c.name+"-"+strings.ToLower(f.Name)+".rules", got)
			}
		})
	}
}

func TestIPv4OnlyMode(t *testing.T) {
	r, err := Config{DPUser: "5678", IPFamilyMode: "IPv4"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if fams := r.Families(); len(fams) != 1 || fams[0].Name != "IPv4" {
		t.Fatalf("families = %v, want IPv4 only", fams)
	}
}

func TestResolveErrorsNameTheField(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{DPUser: "5678", IPFamilyMode: "ipv5"}, "ipFamilyMode"},
		{Config{DPUser: "5678", RedirectPortInbound: 15001}, "redirectPortOutbound"},
		{Config{DPUser: "5678", RedirectDNS: true, RedirectPortDNS: 15006}, "redirectPortInbound"},
		{Config{DPUser: "5678", ExcludeInboundPorts: []uint16{22, 0}}, "excludeInboundPorts[1]"},
		{Config{DPUser: "5678", ExcludeOutboundPorts: []uint16{0}}, "excludeOutboundPorts[0]"},
		{Config{DPUser: "5678", ExcludeOutboundIPs: []netip.Prefix{{}}}, "excludeOutboundIPs[0]"},
		{Config{DPUser: "0"}, "dpUser"},
		{Config{DPUser: "no-such-user-trellis"}, "dpUser"},
	}
	for _, c := range cases {
		_, err := c.cfg.Resolve()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("Resolve(%+v) = %v, want an ErrInvalidConfig naming %s", c.cfg, err, c.field)
		}
	}
}

func TestResolveLooksUpUserName(t *testing.T) {
	r, err := Config{DPUser: "root"}.Resolve()
	if err == nil || !strings.Contains(err.Error(), "root") {
		t.Fatalf("Resolve(root) = %+v, %v; want the root refusal", r, err)
	}
	r, err = Config{DPUser: "nobody"}.Resolve()
	if err != nil {
		t.Skipf("no user nobody here: %v", err)
	}
	if r.DPUID != 65534 {
		t.Fatalf("uid of nobody = %d, want 65534", r.DPUID)
	}
}

func TestInstallTxReplacesAnEarlierInstall(t *testing.T) {
	old, _ := Config{DPUser: "5678", RedirectDNS: true}.Resolve()
	save := "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [3:180]\n" +
		":DOCKER - [0:0]\n:TRELLIS_CREATED_NAT - [0:0]\n"
	for _, c := range old.Chains() {
		save += ":" + c + " - [0:0]\n"
	}
	save += "-A OUTPUT -d 10.0.0.1/32 -j DOCKER\n" + strings.Join(old.ChainRules(IPv4), "\n") + "\n" +
		strings.Join(old.Jumps(), "\n") + "\nCOMMIT\n"
	st := parseNAT(save)
	r, _ := Config{DPUser: "5678"}.Resolve()
	golden(t, "reinstall-without-dns-ipv4.tx", r.installTx(IPv4, st))
	if !st.exists || st.bare() {
		t.Fatalf("state: exists=%v bare=%v", st.exists, st.bare())
	}
	if empty := parseNAT("*filter\nCOMMIT\n"); empty.exists {
		t.Fatal("a save without *nat parsed as an existing nat table")
	}
}
