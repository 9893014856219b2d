package envtest_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/testing/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// TestCRDsInstall starts the API server, installs every generated CRD and
// lists each kind, then lists them again with the built kubectl.
func TestCRDsInstall(t *testing.T) {
	env := envtest.Shared(t)
	if err := envtest.InstallCRDs(env.Config); err != nil {
		t.Fatal(err)
	}
	c, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infos := crd.Infos(kinds.Registry())
	if len(infos) == 0 {
		t.Fatal("no CRDs")
	}
	for _, i := range infos {
		gvr := schema.GroupVersionResource{Group: crd.Group, Version: crd.Version, Resource: i.Plural}
		if _, err := c.Resource(gvr).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list %s: %v", i.Plural, err)
		}
	}
	out, err := exec.CommandContext(ctx, env.Kubectl, "--kubeconfig", env.KubeconfigFile, "get", "crd", "-o", "name").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get crd: %v\n%s", err, out)
	}
	for _, i := range infos {
		if !strings.Contains(string(out), i.Name()) {
			t.Errorf("kubectl get crd does not list %s:\n%s", i.Name(), out)
		}
	}
}
