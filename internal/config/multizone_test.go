package config

import (
	"strings"
	"testing"
)

func TestModes(t *testing.T) {
	base := map[string]string{"HOME": "/home/u"}
	with := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return env(m)
	}
	cfg, err := Load("", with())
	if err != nil || cfg.Mode != ModeStandalone {
		t.Fatalf("default mode %q, %v", cfg.Mode, err)
	}
	cfg, err = Load("", with("TRELLIS_MODE", "zone", "TRELLIS_MULTIZONE_ZONE", "zone-1",
		"TRELLIS_MULTIZONE_GLOBAL_ADDRESS", "grpcs://global:5685", "TRELLIS_MULTIZONE_GLOBAL_CA_CERT_FILE", "/ca.crt",
		"TRELLIS_MULTIZONE_ZONE_TOKEN_FILE", "/zone.token"))
	if err != nil {
		t.Fatal(err)
	}
	if z := cfg.Multizone.Zone; z.Name != "zone-1" || z.GlobalAddress != "grpcs://global:5685" || z.GlobalCACertFile != "/ca.crt" || z.ZoneTokenFile != "/zone.token" {
		t.Fatalf("zone settings: %+v", z)
	}
	if _, err := Load("", with("TRELLIS_MODE", "global")); err != nil {
		t.Fatalf("global mode: %v", err)
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"TRELLIS_MODE", "remote"}, `mode (TRELLIS_MODE): unknown value "remote"`},
		{[]string{"TRELLIS_MODE", "zone", "TRELLIS_MULTIZONE_GLOBAL_ADDRESS", "grpcs://g:5685"}, "multizone.zone.name (TRELLIS_MULTIZONE_ZONE): must name the zone"},
		{[]string{"TRELLIS_MODE", "zone", "TRELLIS_MULTIZONE_ZONE", "Zone One", "TRELLIS_MULTIZONE_GLOBAL_ADDRESS", "grpcs://g:5685"}, "multizone.zone.name (TRELLIS_MULTIZONE_ZONE): \"Zone One\""},
		{[]string{"TRELLIS_MODE", "zone", "TRELLIS_MULTIZONE_ZONE", "z"}, "multizone.zone.globalAddress (TRELLIS_MULTIZONE_GLOBAL_ADDRESS): must be set"},
		{[]string{"TRELLIS_MODE", "zone", "TRELLIS_MULTIZONE_ZONE", "z", "TRELLIS_MULTIZONE_GLOBAL_ADDRESS", "http://g:5685"}, "the scheme must be grpcs"},
		{[]string{"TRELLIS_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE", "/c.crt"}, "multizone.global.kds.tlsCertFile"},
	} {
		_, err := Load("", with(c.env...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.env, err, c.want)
		}
	}
}
