package ctl_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/k8s/install"
)

var generatedKeyLine = regexp.MustCompile(`(?m)^(\s*(caBundle|ca\.crt|tls\.crt|tls\.key): ).*$`)

// `trellisctl install control-plane` prints the default rendering: the
// golden file of internal/k8s/install but for the generated certificates.
func TestInstallControlPlanePrintsTheGoldenManifests(t *testing.T) {
	r := runCtl("install", "control-plane")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want, err := os.ReadFile(filepath.Join("..", "k8s", "install", "testdata", "control-plane.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := generatedKeyLine.ReplaceAllString(r.stdout, "${1}<generated>"); got != string(want) {
		t.Errorf("install control-plane differs from internal/k8s/install/testdata/control-plane.golden.yaml:\n%s", got)
	}
	crds := runCtl("install", "crds")
	if crds.code != 0 || !strings.Contains(r.stdout, crds.stdout) || strings.Count(crds.stdout, "kind: CustomResourceDefinition") < 20 {
		t.Errorf("install crds: exit %d, %d CRDs, contained in install control-plane: %v\n%s", crds.code,
			strings.Count(crds.stdout, "kind: CustomResourceDefinition"), strings.Contains(r.stdout, crds.stdout), crds.stderr)
	}
}

func TestInstallControlPlaneFlags(t *testing.T) {
	r := runCtl("install", "control-plane", "--namespace", "mesh-cp", "--replicas", "2",
		"--image", "registry.example:5000/team/cp:1.2", "--set", "controlPlane.logLevel=debug")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"image: registry.example:5000/team/cp:1.2\n", "kind: PodDisruptionBudget\n", "replicas: 2\n",
		"namespace: mesh-cp\n", "level: debug\n", "advertisedAddress: trellis-control-plane.mesh-cp.svc:5678\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// A registry port is not a tag: the tag defaults to this version.
	r = runCtl("install", "control-plane", "--image", "registry.example:5000/cp")
	if r.code != 0 || !strings.Contains(r.stdout, "image: registry.example:5000/cp:dev\n") {
		t.Errorf("--image without tag: exit %d %s", r.code, r.stderr)
	}
}

func TestInstallControlPlaneGivenCertificates(t *testing.T) {
	tlsv, err := install.GenerateTLS("trellis-system")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{"ca.crt": tlsv.CACert, "tls.crt": tlsv.Cert, "tls.key": tlsv.Key}
	for name, pem := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pem), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"install", "control-plane", "--tls-ca-cert-file", filepath.Join(dir, "ca.crt"),
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key")}
	a, b := runCtl(args...), runCtl(args...)
	if a.code != 0 || a.stdout != b.stdout {
		t.Fatalf("exit %d (%s); two runs with given certificates are identical: %v", a.code, a.stderr, a.stdout == b.stdout)
	}
}

func TestInstallControlPlaneFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "0"}, "--replicas 0: must be at least 1"},
		{[]string{"--image", ":v1"}, "--image \":v1\""},
		{[]string{"--namespace", "Bad_NS"}, "--namespace \"Bad_NS\""},
		{[]string{"--set", "controlPlane.replicas"}, "key.path=value"},
		{[]string{"--set", "controlPlane.nope=1"}, "nope"},
		{[]string{"--set", "controlPlane.image.pullPolicy=Sometimes"}, "controlPlane.image.pullPolicy"},
		{[]string{"--tls-cert-file", "x.crt"}, "go together"},
		{[]string{"--tls-cert-file", "/nonexistent/a", "--tls-key-file", "/nonexistent/b", "--tls-ca-cert-file", "/nonexistent/c"}, "--tls-ca-cert-file: open /nonexistent/c"},
	}
	for _, tc := range cases {
		r := runCtl(append([]string{"install", "control-plane"}, tc.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
