package ctl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/ctl"
)

func readConfig(t *testing.T, path string) ctl.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ctl.Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("config file:\n%s\n%v", data, err)
	}
	return cfg
}

func TestConfigControlPlanesPersisted(t *testing.T) {
	h := newHarness(t)
	delete(h.env, ctl.EnvAPIURL) // the config decides
	cfgPath := h.env[ctl.EnvConfig]
	dead := deadURL(t)

	r := h.mustRun("", "config", "control-planes", "add", "--name", "test", "--address", h.url)
	wantContains(t, "add", r.stdout, "reached Trellis 9.9.9-test", `added Control Plane "test"`, `switched active Control Plane to "test"`)

	// Adding an unreachable control plane fails unless --no-check.
	r = h.mustFail("", "config", "control-planes", "add", "--name", "down", "--address", dead)
	wantContains(t, "stderr", r.stderr, "--no-check", "connection refused")
	h.mustRun("", "config", "control-planes", "add", "--name", "down", "--address", dead, "--no-check")
	r = h.mustFail("", "config", "control-planes", "add", "--name", "down", "--address", dead, "--no-check")
	wantContains(t, "stderr", r.stderr, `a control plane named "down" already exists: use --overwrite`)
	h.mustRun("", "config", "control-planes", "add", "--name", "down", "--address", dead+"/", "--no-check", "--overwrite")

	cfg := readConfig(t, cfgPath)
	if cfg.CurrentContext != "down" || len(cfg.ControlPlanes) != 3 || len(cfg.Contexts) != 3 {
		t.Fatalf("config after adds = %+v", cfg)
	}
	if cfg.ControlPlanes[1].Name != "test" || cfg.ControlPlanes[1].Coordinates.APIServer.URL != h.url {
		t.Errorf("control plane test = %+v", cfg.ControlPlanes[1])
	}

	r = h.mustRun("", "config", "control-planes", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "ACTIVE NAME ADDRESS" || !strings.HasPrefix(lines[3], "*") {
		t.Errorf("list:\n%s", r.stdout)
	}

	// The active control plane is the one commands talk to.
	h.mustFail("", "get", "meshes")
	r = h.mustRun("", "config", "control-planes", "switch", "--name", "test")
	wantContains(t, "switch", r.stdout, `switched active Control Plane to "test"`)
	if readConfig(t, cfgPath).CurrentContext != "test" {
		t.Error("switch was not persisted")
	}
	r = h.mustRun("", "get", "meshes")
	wantContains(t, "get meshes", r.stdout, "default")

	r = h.mustFail("", "config", "control-planes", "switch", "--name", "nope")
	wantContains(t, "stderr", r.stderr, `there is no control plane named "nope"`)

	r = h.mustRun("", "config", "view")
	wantContains(t, "view", r.stdout, "currentContext: test", "url: "+h.url)

	r = h.mustRun("", "config", "control-planes", "remove", "--name", "test")
	wantContains(t, "remove", r.stdout, `removed Control Plane "test"`, `switched active Control Plane to "local"`)
	cfg = readConfig(t, cfgPath)
	if cfg.CurrentContext != "local" || len(cfg.ControlPlanes) != 2 {
		t.Errorf("config after remove = %+v", cfg)
	}
}

func TestConfigFileFlagAndHomeDefault(t *testing.T) {
	h := newHarness(t)
	delete(h.env, ctl.EnvConfig)
	// Without $TRELLISCTL_CONFIG the file lives in ~/.trellisctl/config.
	h.mustRun("", "config", "control-planes", "add", "--name", "a", "--address", h.url)
	if cfg := readConfig(t, filepath.Join(h.home, ".trellisctl", "config")); cfg.CurrentContext != "a" {
		t.Errorf("home config = %+v", cfg)
	}
	// --config-file wins over both.
	flagPath := filepath.Join(t.TempDir(), "sub", "cfg.yaml")
	h.env[ctl.EnvConfig] = filepath.Join(t.TempDir(), "env.yaml")
	h.mustRun("", "--config-file", flagPath, "config", "control-planes", "add", "--name", "b", "--address", h.url, "--no-check")
	if cfg := readConfig(t, flagPath); cfg.CurrentContext != "b" {
		t.Errorf("flag config = %+v", cfg)
	}
	if _, err := os.Stat(h.env[ctl.EnvConfig]); !os.IsNotExist(err) {
		t.Error("the $TRELLISCTL_CONFIG file was written although --config-file was given")
	}
}

func TestAPIURLPrecedence(t *testing.T) {
	h := newHarness(t)
	dead := deadURL(t)
	// Config points at a dead control plane.
	h.mustRun("", "config", "control-planes", "add", "--name", "dead", "--address", dead, "--no-check")

	// env beats config.
	h.env[ctl.EnvAPIURL] = h.url
	h.mustRun("", "get", "meshes")

	// flag beats env.
	r := h.mustFail("", "get", "meshes", "--api-url", dead)
	wantContains(t, "stderr", r.stderr, "control plane at "+dead)

	// config is used without env and flag.
	delete(h.env, ctl.EnvAPIURL)
	r = h.mustFail("", "get", "meshes")
	wantContains(t, "stderr", r.stderr, "control plane at "+dead)
	h.mustRun("", "get", "meshes", "--api-url", h.url)
}
