package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsFileLoadsBackToDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "defaults.yaml")
	if err := os.WriteFile(path, []byte(DefaultsYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, env(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatalf("loading the rendered defaults: %v\n%s", err, DefaultsYAML())
	}
	want, _ := Load("", env(map[string]string{"HOME": "/home/u"}))
	if got != want {
		t.Fatalf("defaults file does not load back to the defaults:\n got %+v\nwant %+v", got, want)
	}
	if got.Store.SQLite.Path != "/home/u/.local/share/trellis/trellis.db" {
		t.Fatalf("sqlite path = %q", got.Store.SQLite.Path)
	}
}

func TestEveryKeyHasOneVariableAndIsDocumented(t *testing.T) {
	seen := map[string]bool{}
	out := DefaultsYAML()
	for _, s := range settings {
		if seen[s.env] {
			t.Errorf("variable %s used twice", s.env)
		}
		seen[s.env] = true
		if !strings.Contains(out, "# env: "+s.env) {
			t.Errorf("defaults file does not document %s", s.env)
		}
		// The variable is the key, upper-cased, with a TRELLIS_ prefix, in
		// the spirit of Kuma's mapping (a few keys are shortened: ADDR).
		if !strings.HasPrefix(s.env, "TRELLIS_") {
			t.Errorf("%s does not start with TRELLIS_", s.env)
		}
	}
}

func TestFileThenEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.yaml")
	os.WriteFile(path, []byte("store:\n  type: memory\napiServer:\n  http:\n    address: 127.0.0.1:7000\ndpServer:\n  deregistrationDelay: 3s\n"), 0o600)
	cfg, err := Load(path, env(map[string]string{
		"TRELLIS_API_HTTP_ADDR": "127.0.0.1:7001",
		"TRELLIS_DATA_DIR":      "/data",
		"XDG_DATA_HOME":         "/ignored",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Type != "memory" || cfg.APIServer.HTTP.Address != "127.0.0.1:7001" || time.Duration(cfg.DPServer.DeregistrationDelay) != 3*time.Second {
		t.Fatalf("file/env precedence wrong: %+v", cfg)
	}
	if cfg.Store.SQLite.Path != "/data/trellis.db" {
		t.Fatalf("sqlite path = %q", cfg.Store.SQLite.Path)
	}
}

func TestAPIServerAuthnAndHTTPS(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.APIServer.Authn.LocalhostIsAdmin || cfg.APIServer.HTTPS.Address != ":5682" || cfg.APIServer.HTTPS.TLSCertFile != "" {
		t.Fatalf("defaults: %+v", cfg.APIServer)
	}
	path := filepath.Join(t.TempDir(), "cp.yaml")
	os.WriteFile(path, []byte("apiServer:\n  https:\n    tlsCertFile: /f.crt\n    tlsKeyFile: /f.key\n  authn:\n    localhostIsAdmin: true\n"), 0o600)
	cfg, err = Load(path, env(map[string]string{
		"HOME":                                 "/h",
		"TRELLIS_API_HTTPS_ADDR":               "127.0.0.1:9443",
		"TRELLIS_API_HTTPS_CERT_FILE":          "/e.crt",
		"TRELLIS_API_HTTPS_KEY_FILE":           "/e.key",
		"TRELLIS_API_AUTHN_LOCALHOST_IS_ADMIN": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := HTTPSListener{Address: "127.0.0.1:9443", TLSCertFile: "/e.crt", TLSKeyFile: "/e.key"}
	if cfg.APIServer.HTTPS != want || cfg.APIServer.Authn.LocalhostIsAdmin {
		t.Fatalf("environment did not win: %+v", cfg.APIServer)
	}
}

func TestXDGDataHome(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/x/trellis" {
		t.Fatalf("dataDir = %q", cfg.DataDir)
	}
}

func TestBadValuesNameTheKeyAndVariable(t *testing.T) {
	for name, tc := range map[string]struct {
		file, want string
		env        map[string]string
	}{
		"store type":           {env: map[string]string{"TRELLIS_STORE_TYPE": "mysql"}, want: "store.type (TRELLIS_STORE_TYPE): unknown value \"mysql\""},
		"pg url":               {env: map[string]string{"TRELLIS_STORE_TYPE": "postgres"}, want: "store.postgres.url"},
		"duration":             {env: map[string]string{"TRELLIS_DP_SERVER_DEREGISTRATION_DELAY": "soon"}, want: "TRELLIS_DP_SERVER_DEREGISTRATION_DELAY (dpServer.deregistrationDelay): must be a duration"},
		"address":              {env: map[string]string{"TRELLIS_API_HTTP_ADDR": "nope"}, want: "apiServer.http.address"},
		"unknown key":          {file: "stor:\n  type: memory\n", want: "unknown field \"stor\""},
		"api cert without key": {env: map[string]string{"TRELLIS_API_HTTPS_CERT_FILE": "/c.crt"}, want: "apiServer.https.tlsCertFile (TRELLIS_API_HTTPS_CERT_FILE): tlsCertFile and tlsKeyFile must be set together"},
		"localhost bool":       {env: map[string]string{"TRELLIS_API_AUTHN_LOCALHOST_IS_ADMIN": "maybe"}, want: "TRELLIS_API_AUTHN_LOCALHOST_IS_ADMIN (apiServer.authn.localhostIsAdmin): must be true or false"},
	} {
		t.Run(name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "cp.yaml")
				os.WriteFile(path, []byte(tc.file), 0o600)
			}
			e := map[string]string{"HOME": "/h"}
			for k, v := range tc.env {
				e[k] = v
			}
			_, err := Load(path, env(e))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not contain %q", err, tc.want)
			}
		})
	}
}

// The committed defaults file is the output of `trellis-cp config defaults`;
// regenerate it with: go test ./internal/config -update
func TestCommittedDefaultsFile(t *testing.T) {
	const path = "../../deploy/trellis-cp.defaults.yaml"
	if *update {
		if err := os.WriteFile(path, []byte(DefaultsYAML()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != DefaultsYAML() {
		t.Fatalf("%s is stale: run go test ./internal/config -update", path)
	}
}

func TestDPServerAuthn(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DPServer.Authn.Type != DPAuthnToken {
		t.Fatalf("default dpServer.authn.type = %q, want dpToken", cfg.DPServer.Authn.Type)
	}
	cfg, err = Load("", env(map[string]string{"HOME": "/h", "TRELLIS_DP_SERVER_AUTHN": "none"}))
	if err != nil || cfg.DPServer.Authn.Type != DPAuthnNone {
		t.Fatalf("TRELLIS_DP_SERVER_AUTHN=none: %q, %v", cfg.DPServer.Authn.Type, err)
	}
	_, err = Load("", env(map[string]string{"HOME": "/h", "TRELLIS_DP_SERVER_AUTHN": "mtls"}))
	if err == nil || !strings.Contains(err.Error(), `dpServer.authn.type (TRELLIS_DP_SERVER_AUTHN): unknown value "mtls"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDiagnosticsAddress(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Diagnostics.Address != "" {
		t.Fatalf("default diagnostics.address = %q, want empty (off)", cfg.Diagnostics.Address)
	}
	cfg, err = Load("", env(map[string]string{"HOME": "/h", "TRELLIS_DIAGNOSTICS_ADDR": "127.0.0.1:5680"}))
	if err != nil || cfg.Diagnostics.Address != "127.0.0.1:5680" {
		t.Fatalf("TRELLIS_DIAGNOSTICS_ADDR: %q, %v", cfg.Diagnostics.Address, err)
	}
	_, err = Load("", env(map[string]string{"HOME": "/h", "TRELLIS_DIAGNOSTICS_ADDR": "5680"}))
	if err == nil || !strings.Contains(err.Error(), "diagnostics.address (TRELLIS_DIAGNOSTICS_ADDR): must be host:port") {
		t.Fatalf("err = %v", err)
	}
}
