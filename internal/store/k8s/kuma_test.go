package k8s_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/store"
	k8sstore "github.com/trellis-mesh/trellis/internal/store/k8s"
)

// Kuma-format manifests, as a Kuma user applies them with kubectl.
const kumaManifests = `
apiVersion: kuma.io/v1alpha1
kind: Mesh
metadata:
  name: default
spec:
  mtls:
    enabledBackend: ca-1
    backends:
    - name: ca-1
      type: builtin
---
apiVersion: kuma.io/v1alpha1
kind: MeshTimeout
metadata:
  name: timeout-web
  namespace: NS
  labels:
    kuma.io/mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 20s
---
apiVersion: kuma.io/v1alpha1
kind: Dataplane
mesh: default
metadata:
  name: web-1
  namespace: team-a
spec:
  networking:
    address: 10.0.0.1
    inbound:
    - port: 8080
      tags:
        kuma.io/service: web_team-a_svc_80
---
apiVersion: v1
kind: Secret
metadata:
  name: my-secret
  namespace: NS
  labels:
    kuma.io/mesh: default
type: system.kuma.io/secret
data:
  value: aGVsbG8=
`

var gvrs = map[string]schema.GroupVersionResource{
	"Mesh":        {Group: "kuma.io", Version: "v1alpha1", Resource: "meshes"},
	"MeshTimeout": {Group: "kuma.io", Version: "v1alpha1", Resource: "meshtimeouts"},
	"Dataplane":   {Group: "kuma.io", Version: "v1alpha1", Resource: "dataplanes"},
	"Secret":      {Version: "v1", Resource: "secrets"},
	"Namespace":   {Version: "v1", Resource: "namespaces"},
}

// TestKumaManifests applies Kuma's Kubernetes manifests with a plain client
// (as kubectl would) and reads them back through the store under Kuma's
// REST-API names.
func TestKumaManifests(t *testing.T) {
	s := newStore(t).(*k8sstore.Store)
	ns := s.SystemNamespace()
	e := env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	teamA := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "team-a"}}}
	if _, err := c.Resource(gvrs["Namespace"]).Create(ctx, teamA, metav1.CreateOptions{}); err != nil {
		t.Logf("namespace team-a: %v", err)
	}
	events, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range splitDocs(kumaManifests) {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatal(err)
		}
		if o.GetNamespace() == "NS" {
			o.SetNamespace(ns)
		}
		ri := c.Resource(gvrs[o.GetKind()])
		var err error
		if o.GetNamespace() != "" {
			_, err = ri.Namespace(o.GetNamespace()).Create(ctx, o, metav1.CreateOptions{})
		} else {
			_, err = ri.Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}

	mt, err := s.Get(ctx, store.Key{Kind: "MeshTimeout", Mesh: "default", Name: "timeout-web"})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, mt.Spec, `{"targetRef":{"kind":"Mesh"},"to":[{"default":{"idleTimeout":"20s"},"targetRef":{"kind":"Mesh"}}]}`)
	if mt.Labels["kuma.io/mesh"] != "default" {
		t.Errorf("labels %v: the user's kuma.io/mesh label is kept", mt.Labels)
	}
	dp, err := s.Get(ctx, store.Key{Kind: "Dataplane", Mesh: "default", Name: "web-1.team-a"})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, dp.Spec, `{"networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web_team-a_svc_80"}}]}}`)
	sec, err := s.Get(ctx, store.Key{Kind: "Secret", Mesh: "default", Name: "my-secret"})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, sec.Spec, `{"data":"aGVsbG8="}`)
	m, err := s.Get(ctx, store.Key{Kind: "Mesh", Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if m.CreationTime.IsZero() || m.Version == "" {
		t.Errorf("mesh without time or version: %+v", m)
	}

	seen := map[store.Key]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < 4 {
		select {
		case ev := <-events:
			if ev.Op == store.OpCreate {
				seen[ev.Key()] = true
			}
		case <-deadline:
			t.Fatalf("create events within 10 s: got %v", seen)
		}
	}
	for _, k := range []store.Key{{Kind: "Mesh", Name: "default"}, mt.Key(), dp.Key(), sec.Key()} {
		if !seen[k] {
			t.Errorf("no create event for %v (got %v)", k, seen)
		}
	}

	// Written through the store, a record lands where Kuma would put it.
	r := &store.Record{Kind: "Dataplane", Mesh: "default", Name: "web-2.team-a", Spec: []byte(`{"networking":{"address":"10.0.0.2"}}`)}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	o, err := c.Resource(gvrs["Dataplane"]).Namespace("team-a").Get(ctx, "web-2", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Dataplane web-2.team-a is not team-a/web-2: %v", err)
	}
	if o.Object["mesh"] != "default" {
		t.Errorf("Dataplane mesh field %v", o.Object["mesh"])
	}
	p := &store.Record{Kind: "MeshRetry", Mesh: "default", Name: "retry-1", Spec: []byte(`{"targetRef":{"kind":"Mesh"}}`)}
	if err := s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	o, err = c.Resource(schema.GroupVersionResource{Group: "kuma.io", Version: "v1alpha1", Resource: "meshretries"}).Namespace(ns).Get(ctx, "retry-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("MeshRetry retry-1 is not %s/retry-1: %v", ns, err)
	}
	if o.GetLabels()["kuma.io/mesh"] != "default" {
		t.Errorf("MeshRetry labels %v, want kuma.io/mesh=default", o.GetLabels())
	}
}

func wantJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	_ = json.Unmarshal([]byte(want), &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("spec %s, want %s", gb, wb)
	}
}

func splitDocs(s string) []string {
	var out []string
	for _, d := range strings.Split(s, "\n---\n") {
		if strings.TrimSpace(d) != "" {
			out = append(out, d)
		}
	}
	return out
}
