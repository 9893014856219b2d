package install_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/k8s/install"
	"github.com/trellis-mesh/trellis/internal/testing/envtest"
)

// kubectl runs the envtest kubectl against env with stdin, returning its
// combined output.
func kubectl(t *testing.T, env *envtest.Env, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Kubectl, append([]string{"--kubeconfig", env.KubeconfigFile}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A real kube-apiserver accepts every object `trellisctl install
// control-plane` prints (kubectl apply, server-side dry run first, then for
// real), and the validating webhook it registers is live: with no control
// plane behind the Service, the API server refuses kuma.io writes naming
// the webhook.
func TestManifestsApplyToARealAPIServer(t *testing.T) {
	env := envtest.Start(t)
	vals := valuesWith(t, "controlPlane.replicas=2")
	out, err := install.ControlPlane(install.Options{Namespace: "trellis-system", Values: vals, CreateNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	crds, err := install.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	// Dry run: the CRDs (cluster-scoped, no dependencies) and the Namespace
	// must exist before the namespaced objects can be checked.
	if o, err := kubectl(t, env, crds, "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply --dry-run=server (install crds): %v\n%s", err, o)
	}
	o, err := kubectl(t, env, out, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply (install control-plane): %v\n%s", err, o)
	}
	objs := parseDocs(t, string(out))
	for _, obj := range objs {
		md := obj["metadata"].(map[string]any)
		args := []string{"get", strings.ToLower(obj["kind"].(string)), md["name"].(string), "-o", "name"}
		if ns, ok := md["namespace"].(string); ok {
			args = append(args, "-n", ns)
		}
		if o, err := kubectl(t, env, nil, args...); err != nil {
			t.Errorf("%s not found after apply: %v\n%s", objectKey(obj), err, o)
		}
	}
	if !strings.Contains(o, "poddisruptionbudget.policy/trellis-control-plane created") {
		t.Errorf("no PodDisruptionBudget applied for 2 replicas:\n%s", o)
	}
	// Re-applying the same rendering (an upgrade) is accepted.
	o, err = kubectl(t, env, out, "apply", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server (again): %v\n%s", err, o)
	}
	checkRBAC(t, env)
	if err := waitForCRD(t, env, "meshes.kuma.io"); err != nil {
		t.Fatal(err)
	}
	mesh := []byte("apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: webhook-probe\n")
	o, err = kubectl(t, env, mesh, "create", "-f", "-")
	if err == nil || !strings.Contains(o, "validator.trellis.kuma.io") {
		t.Errorf("a Mesh created with the webhook configured but no control plane: err %v, want a refusal naming validator.trellis.kuma.io:\n%s", err, o)
	}
}

func waitForCRD(t *testing.T, env *envtest.Env, name string) error {
	t.Helper()
	o, err := kubectl(t, env, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd/"+name)
	if err != nil {
		t.Logf("%s", o)
	}
	return err
}

// checkRBAC asks the API server's authorizer, as the control plane's
// ServiceAccount, for what trellis-cp does (the Pod controller, the
// injector, the Kubernetes store, leader election) and for what it must
// not do.
func checkRBAC(t *testing.T, env *envtest.Env) {
	t.Helper()
	as := "--as=system:serviceaccount:trellis-system:trellis-control-plane"
	allowed := [][]string{
		{"list", "pods", "--all-namespaces"}, {"watch", "services", "--all-namespaces"}, {"get", "namespaces"},
		{"create", "dataplanes.kuma.io", "-n", "team-a"}, {"patch", "dataplanes.kuma.io", "-n", "team-a"},
		{"delete", "meshtimeouts.kuma.io", "-n", "team-a"}, {"create", "meshes.kuma.io"}, {"watch", "meshes.kuma.io"},
		{"update", "meshtimeouts.kuma.io", "--subresource=status", "-n", "team-a"},
		{"update", "pods", "--subresource=finalizers", "-n", "team-a"},
		{"create", "events", "-n", "team-a"},
		{"get", "leases.coordination.k8s.io", "-n", "trellis-system"}, {"create", "leases.coordination.k8s.io", "-n", "trellis-system"},
		{"update", "leases.coordination.k8s.io", "-n", "trellis-system"},
		{"create", "secrets", "-n", "trellis-system"}, {"watch", "configmaps", "-n", "trellis-system"},
	}
	denied := [][]string{
		{"delete", "pods", "-n", "team-a"}, {"create", "pods", "-n", "team-a"}, {"get", "secrets", "-n", "team-a"},
		{"update", "leases.coordination.k8s.io", "-n", "kube-system"}, {"create", "namespaces"},
		{"update", "deployments.apps", "-n", "trellis-system"}, {"create", "clusterroles.rbac.authorization.k8s.io"},
	}
	// The answer is the last line (kubectl warns first about cluster-scoped
	// resources).
	canI := func(a []string) string {
		o, _ := kubectl(t, env, nil, append([]string{"auth", "can-i", as}, a...)...)
		lines := strings.Split(strings.TrimSpace(o), "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	for _, a := range allowed {
		if got := canI(a); got != "yes" {
			t.Errorf("the control plane may not %v: %s", a, got)
		}
	}
	for _, a := range denied {
		if got := canI(a); got != "no" {
			t.Errorf("the control plane may %v, want no: %s", a, got)
		}
	}
}
