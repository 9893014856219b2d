package install_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	chart "github.com/trellis-mesh/trellis/deploy/helm/trellis"
	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/k8s/install"
)

var update = flag.Bool("update", false, "rewrite the golden file and the chart's crds/ folder")

func b64(t testing.TB, v any) string {
	t.Helper()
	s, _ := v.(string)
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %q: %v", s, err)
	}
	return string(d)
}

func valuesWith(t testing.TB, sets ...string) map[string]any {
	t.Helper()
	v, err := install.DefaultValues()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sets {
		if err := install.Set(v, s); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func renderCLI(t testing.TB, ns string, values map[string]any) []map[string]any {
	t.Helper()
	out, err := install.ControlPlane(install.Options{Namespace: ns, Values: values, CreateNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	return parseDocs(t, string(out))
}

var chartCases = map[string]struct {
	ns   string
	sets []string
}{
	"defaults": {ns: "trellis-system"},
	"ha and overrides": {ns: "mesh-cp", sets: []string{
		"controlPlane.replicas=3", "controlPlane.logLevel=debug", "controlPlane.injectorFailurePolicy=Ignore",
		"controlPlane.image.repository=registry.example:5000/cp", "controlPlane.image.tag=v1.2.3",
		"controlPlane.image.pullPolicy=Always", "controlPlane.resources.limits.cpu=2",
		"dataPlane.image.tag=v9", "dataPlane.initImage.repository=example/init",
	}},
}

// The chart, rendered with Go templates and Sprig as helm renders it,
// gives the objects `trellisctl install control-plane` prints, but for the
// certificates each generates.
func TestChartRendersTheSameObjects(t *testing.T) {
	for name, tc := range chartCases {
		t.Run(name, func(t *testing.T) {
			cli := renderCLI(t, tc.ns, valuesWith(t, tc.sets...))
			helm := renderChart(t, tc.ns, valuesWith(t, append(tc.sets, "namespace.create=true")...))
			compareObjects(t, withoutKeyMaterial(t, cli), withoutKeyMaterial(t, helm))
			checkKeyMaterial(t, "trellisctl", tc.ns, cli)
			checkKeyMaterial(t, "chart", tc.ns, helm)
		})
	}
}

// With the certificates given as values, both renderings are identical,
// key material included.
func TestChartWithGivenCertificatesIsIdentical(t *testing.T) {
	tlsv, err := install.GenerateTLS("trellis-system")
	if err != nil {
		t.Fatal(err)
	}
	vals := valuesWith(t)
	for k, v := range map[string]string{"caCert": tlsv.CACert, "cert": tlsv.Cert, "key": tlsv.Key} {
		if err := install.SetValue(vals, "controlPlane.tls."+k, v); err != nil {
			t.Fatal(err)
		}
	}
	cli := renderCLI(t, "trellis-system", vals)
	_ = install.SetValue(vals, "namespace.create", true)
	helm := renderChart(t, "trellis-system", vals)
	sortByKey(cli)
	sortByKey(helm)
	if !reflect.DeepEqual(cli, helm) {
		t.Fatal("renderings with given certificates differ")
	}
	secret, _ := keyMaterial(t, cli)
	if secret["tls.key"] != tlsv.Key || secret["ca.crt"] != tlsv.CACert {
		t.Fatal("the Secret does not carry the given certificate")
	}
}

func sortByKey(objs []map[string]any) {
	sortSlice(objs, func(a, b map[string]any) bool { return objectKey(a) < objectKey(b) })
}

func sortSlice(objs []map[string]any, less func(a, b map[string]any) bool) {
	for i := 1; i < len(objs); i++ {
		for j := i; j > 0 && less(objs[j], objs[j-1]); j-- {
			objs[j], objs[j-1] = objs[j-1], objs[j]
		}
	}
}

func compareObjects(t *testing.T, want, got map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: rendered by trellisctl, not by the chart", k)
			continue
		}
		if !reflect.DeepEqual(w, g) {
			wy, _ := yaml.Marshal(w)
			gy, _ := yaml.Marshal(g)
			t.Errorf("%s differs:\n--- trellisctl\n%s\n--- chart\n%s", k, wy, gy)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: rendered by the chart, not by trellisctl", k)
		}
	}
}

// checkKeyMaterial: the webhooks trust the Secret's CA, which signed a
// serving certificate for every name of the Service, matching its key.
func checkKeyMaterial(t *testing.T, who, ns string, objs []map[string]any) {
	t.Helper()
	secret, bundles := keyMaterial(t, objs)
	if len(bundles) != 3 {
		t.Fatalf("%s: %d webhooks with a caBundle, want 3", who, len(bundles))
	}
	for _, b := range bundles {
		if b != secret["ca.crt"] {
			t.Errorf("%s: a webhook's caBundle is not the Secret's ca.crt", who)
		}
	}
	pair, err := tls.X509KeyPair([]byte(secret["tls.crt"]), []byte(secret["tls.key"]))
	if err != nil {
		t.Fatalf("%s: tls.crt and tls.key: %v", who, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(secret["ca.crt"])) {
		t.Fatalf("%s: ca.crt holds no certificate", who)
	}
	for _, name := range install.ServiceDNSNames(ns) {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("%s: serving certificate for %s: %v", who, name, err)
		}
	}
}

var keyLine = regexp.MustCompile(`(?m)^(\s*(caBundle|ca\.crt|tls\.crt|tls\.key): ).*$`)

// TestGolden: the default rendering, certificates replaced by
// placeholders. go test ./internal/k8s/install -run TestGolden -update
func TestGolden(t *testing.T) {
	out, err := install.ControlPlane(install.Options{CreateNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	got := keyLine.ReplaceAll(out, []byte("${1}<generated>"))
	golden := filepath.Join("testdata", "control-plane.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the rendering differs from %s (run with -update and review the diff)", golden)
	}
	again, err := install.ControlPlane(install.Options{CreateNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keyLine.ReplaceAll(again, []byte("${1}<generated>")), got) {
		t.Error("two renderings differ beyond the generated certificates")
	}
	if bytes.Equal(again, out) {
		t.Error("two renderings carry the same certificates: nothing was generated")
	}
}

// The chart's crds/ are the CRDs generated from the resource registry
// (internal/k8s/crd); -update copies them.
func TestChartCRDsMatchGenerated(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "deploy", "helm", "trellis", "crds")
	names := crd.FileNames()
	if *update {
		old, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, f := range old {
			_ = os.Remove(f)
		}
		for i, doc := range crd.All() {
			if err := os.WriteFile(filepath.Join(dir, names[i]), doc, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have, _ := fs.Glob(chart.Files, "crds/*.yaml")
	if len(have) != len(names) {
		t.Errorf("the chart has %d CRD files, the generator %d (go test ./internal/k8s/install -run TestChartCRDs -update)", len(have), len(names))
	}
	for i, doc := range crd.All() {
		got, err := fs.ReadFile(chart.Files, "crds/"+names[i])
		if err != nil || !bytes.Equal(got, doc) {
			t.Errorf("deploy/helm/trellis/crds/%s is stale or missing (go test ./internal/k8s/install -run TestChartCRDs -update)", names[i])
		}
	}
	out, err := install.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	objs := parseDocs(t, string(out))
	if len(objs) != len(names) {
		t.Fatalf("install crds printed %d objects, want %d", len(objs), len(names))
	}
	for _, o := range objs {
		if o["kind"] != "CustomResourceDefinition" {
			t.Errorf("install crds printed a %v", o["kind"])
		}
	}
}

// The ConfigMap's config.yaml is a valid trellis-cp configuration in the
// environment the Deployment gives it.
func TestConfigMapLoadsInTrellisCP(t *testing.T) {
	for _, o := range renderCLI(t, "trellis-system", valuesWith(t)) {
		if o["kind"] != "ConfigMap" {
			continue
		}
		file := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(file, []byte(o["data"].(map[string]any)["config.yaml"].(string)), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"TRELLIS_ENVIRONMENT": "kubernetes", "TRELLIS_K8S_SYSTEM_NAMESPACE": "trellis-system"}
		cfg, err := config.Load(file, func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("trellis-cp refuses the ConfigMap's config: %v", err)
		}
		if cfg.Store.Type != config.StoreKubernetes || cfg.Kubernetes.WebhookServer.TLSCertFile != install.TLSDir+"/tls.crt" {
			t.Errorf("config: store %q, webhook cert %q", cfg.Store.Type, cfg.Kubernetes.WebhookServer.TLSCertFile)
		}
		if want := "https://trellis-control-plane.trellis-system.svc:5678"; cfg.Kubernetes.Injector.CPAddress != want {
			t.Errorf("injector cpAddress %q, want %q", cfg.Kubernetes.Injector.CPAddress, want)
		}
		return
	}
	t.Fatal("no ConfigMap rendered")
}

func TestInvalidValuesNameTheKey(t *testing.T) {
	cases := map[string]struct {
		ns   string
		sets []string
		want string
	}{
		"replicas":     {sets: []string{"controlPlane.replicas=0"}, want: "controlPlane.replicas"},
		"pull policy":  {sets: []string{"controlPlane.image.pullPolicy=Sometimes"}, want: "controlPlane.image.pullPolicy"},
		"unknown key":  {sets: []string{"controlPlane.replicaz=2"}, want: "replicaz"},
		"partial tls":  {sets: []string{"controlPlane.tls.cert=x"}, want: "controlPlane.tls"},
		"log level":    {sets: []string{"controlPlane.logLevel=loud"}, want: "controlPlane.logLevel"},
		"failure":      {sets: []string{"controlPlane.injectorFailurePolicy=Maybe"}, want: "controlPlane.injectorFailurePolicy"},
		"namespace":    {ns: "Not_A_Label", want: "--namespace"},
		"not a map":    {sets: []string{"controlPlane.replicas.x=1"}, want: "controlPlane.replicas is not a map"},
		"no repo":      {sets: []string{"dataPlane.image.repository="}, want: "dataPlane.image.repository"},
		"wrong type":   {sets: []string{"controlPlane.replicas=two"}, want: "replicas"},
		"no equal":     {sets: []string{"controlPlane.replicas"}, want: "key.path=value"},
		"empty in key": {sets: []string{"controlPlane..replicas=1"}, want: "empty element"},
		"quantity":     {sets: []string{"controlPlane.resources.limits.memory=lots"}, want: "controlPlane.resources.limits.memory"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, _ := install.DefaultValues()
			var err error
			for _, s := range tc.sets {
				if err = install.Set(v, s); err != nil {
					break
				}
			}
			if err == nil {
				_, err = install.ControlPlane(install.Options{Namespace: tc.ns, Values: v})
			}
			if err == nil || !errors.Is(err, install.ErrInvalidValue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidValue naming %q", err, tc.want)
			}
		})
	}
}
