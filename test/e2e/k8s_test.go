package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/trellis-mesh/trellis/internal/k8s/webhook"
	"github.com/trellis-mesh/trellis/internal/testing/envtest"
	"github.com/trellis-mesh/trellis/internal/tlscert"
)

// TestKubernetesModeEndToEnd runs trellis-cp in environment kubernetes
// against a real kube-apiserver and etcd: the API server calls its webhooks
// on 127.0.0.1, an injected Pod with a selecting Service becomes a
// Dataplane, a trellis-dp process outside the cluster connects for it and
// receives a MeshTimeout created as a custom resource, and the REST API
// reads through the Kubernetes store.
func TestKubernetesModeEndToEnd(t *testing.T) {
	env := envtest.Start(t)
	if err := envtest.InstallCRDs(env.Config); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	dyn := dynamic.NewForConfigOrDie(env.Config)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := tlscert.Ensure(certFile, keyFile, "trellis-webhook", nil); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(certFile)
	webhookAddr := freeAddr(t)
	const systemNS = "trellis-e2e-system"
	// The injected sidecar reaches the DP server at this address and serves
	// its admin API on a free port (it runs on this host).
	dpAddr, sidecarAdmin := freeAddr(t), freePort(t)
	cp := startCP(t, map[string]string{
		"TRELLIS_DP_SERVER_ADDR":                     dpAddr,
		"TRELLIS_K8S_INJECTOR_CP_ADDRESS":            "https://" + dpAddr,
		"TRELLIS_K8S_INJECTOR_ADMIN_PORT":            strconv.Itoa(sidecarAdmin),
		"TRELLIS_ENVIRONMENT":                        "kubernetes",
		"KUBECONFIG":                                 env.KubeconfigFile,
		"TRELLIS_K8S_SYSTEM_NAMESPACE":               systemNS,
		"TRELLIS_K8S_WEBHOOK_ADDR":                   webhookAddr,
		"TRELLIS_K8S_WEBHOOK_TLS_CERT_FILE":          certFile,
		"TRELLIS_K8S_WEBHOOK_TLS_KEY_FILE":           keyFile,
		"TRELLIS_K8S_LEADER_ELECTION_LEASE_DURATION": "4s",
		"TRELLIS_K8S_LEADER_ELECTION_RENEW_DEADLINE": "3s",
		"TRELLIS_K8S_LEADER_ELECTION_RETRY_PERIOD":   "500ms",
	})
	v, m := webhook.Configurations("trellis-e2e", "https://"+webhookAddr, caPEM)
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the leader creates the default mesh", func() error {
		return httpOK(cp.URL + "/meshes/default")
	})

	// An injected Pod on 127.0.0.1 (the proxy runs on this host), its
	// redirect ports free ones, and a Service selecting it.
	appPort, inPort, outPort, probePort := freePort(t), freePort(t), freePort(t), freePort(t)
	app := &http.Server{Addr: "127.0.0.1:" + strconv.Itoa(appPort), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "app healthy")
	})}
	go func() { _ = app.ListenAndServe() }()
	t.Cleanup(func() { _ = app.Close() })
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"kuma.io/sidecar-injection": "enabled"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{
			"kuma.io/transparent-proxying-inbound-port":  strconv.Itoa(inPort),
			"kuma.io/transparent-proxying-outbound-port": strconv.Itoa(outPort),
			"kuma.io/builtin-dns":                        "disabled",
			"kuma.io/application-probe-proxy-port":       strconv.Itoa(probePort),
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(appPort)}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz", Port: intstr.FromString("http")}}},
		}}}}
	created, err := cs.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(created.Spec.Containers); n != 2 || created.Spec.Containers[1].Name != "kuma-sidecar" {
		t.Fatalf("the Pod came back without the sidecar: %+v", created.Spec.Containers)
	}
	httpProto := "http"
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: &httpProto}}}}
	if _, err := cs.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created.Status.PodIP = "127.0.0.1"
	created.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	running, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var dpDoc []byte
	eventually(t, 30*time.Second, "the Pod's Dataplane through the REST API", func() error {
		resp, err := http.Get(cp.URL + "/meshes/default/dataplanes/web-1.shop")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		dpDoc, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d: %s", resp.StatusCode, dpDoc)
		}
		if !strings.Contains(string(dpDoc), `"kuma.io/service":"web_shop_svc_80"`) {
			return fmt.Errorf("dataplane %s", dpDoc)
		}
		return nil
	})

	// The proxy, outside the cluster, runs the injected container's command
	// line and env, and bootstraps from the stored Dataplane (no Dataplane
	// file). Service-account-token authentication is not built, so it also
	// gets a dataplane token.
	var dp map[string]any
	if err := json.Unmarshal(dpDoc, &dp); err != nil {
		t.Fatal(err)
	}
	delete(dp, "creationTime")
	delete(dp, "modificationTime")
	doc, _ := json.Marshal(dp)
	// The leader creates the default mesh and then its token signing key:
	// wait for the key before issuing the sidecar's token.
	eventually(t, 30*time.Second, "the default mesh's dataplane-token signing key", func() error {
		_, stderr, err := cp.ctl("", "generate", "dataplane-token", "--name", "probe", "--mesh", "default", "--valid-for", "1m")
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})
	p := startInjectedSidecar(t, running, "--dataplane-token-file", dpTokenFile(t, cp, string(doc)))
	if p.admin != "127.0.0.1:"+strconv.Itoa(sidecarAdmin) {
		t.Fatalf("the sidecar's admin address %s", p.admin)
	}

	// The rewritten readiness probe goes through the sidecar's probe proxy
	// to the application.
	probe := running.Spec.Containers[0].ReadinessProbe
	if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.IntValue() != probePort {
		t.Fatalf("the readiness probe was not rewritten to the probe proxy: %+v", probe)
	}
	eventuallyDP(t, p, 10*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", probePort, probe.HTTPGet.Path))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "app healthy" {
			return fmt.Errorf("probe %s: %d %q", probe.HTTPGet.Path, resp.StatusCode, b)
		}
		return nil
	})

	// A policy created as a custom resource reaches it.
	if dump, _ := json.Marshal(configDump(t, p)); strings.Contains(string(dump), `"13s"`) {
		t.Fatal("a 13s timeout before the MeshTimeout exists")
	}
	mt := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kuma.io/v1alpha1", "kind": "MeshTimeout",
		"metadata": map[string]any{"name": "slow-connect", "namespace": systemNS, "labels": map[string]any{"kuma.io/mesh": "default"}},
		// MeshSubset: more specific than the mesh's default MeshTimeout (targetRef Mesh)
		"spec": map[string]any{"targetRef": map[string]any{"kind": "MeshSubset", "tags": map[string]any{"kuma.io/service": "web_shop_svc_80"}},
			"to":   []any{map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"connectionTimeout": "13s"}}},
			"from": []any{map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"connectionTimeout": "13s"}}}},
	}}
	gvr := schema.GroupVersionResource{Group: "kuma.io", Version: "v1alpha1", Resource: "meshtimeouts"}
	if _, err := dyn.Resource(gvr).Namespace(systemNS).Create(ctx, mt, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the MeshTimeout in the proxy's config", func() error {
		resp, err := http.Get("http://" + p.admin + "/config_dump")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"13s"`) {
			return fmt.Errorf("no 13s timeout in the config dump yet")
		}
		return nil
	})

	// Deleting the Pod removes the Dataplane.
	p.Stop()
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Dataplane removed", func() error {
		resp, err := http.Get(cp.URL + "/meshes/default/dataplanes/web-1.shop")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return nil
}
