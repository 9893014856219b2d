package manager_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/config"
	k8smanager "github.com/trellis-mesh/trellis/internal/k8s/manager"
	"github.com/trellis-mesh/trellis/internal/k8s/webhook"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	k8sstore "github.com/trellis-mesh/trellis/internal/store/k8s"
	"github.com/trellis-mesh/trellis/internal/testing/envtest"
	"github.com/trellis-mesh/trellis/internal/tlscert"
)

func TestMain(m *testing.M) { envtest.Main(m) }

const systemNS = "trellis-test-system"

// replica is one control plane's Kubernetes side.
type replica struct {
	mgr    *k8smanager.Manager
	res    *manager.Manager
	cancel context.CancelFunc
	done   chan error
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startReplica starts a Kubernetes side on the Kubernetes store, its
// webhook server on 127.0.0.1:port.
func startReplica(t *testing.T, cfg *rest.Config, identity, certFile, keyFile string, port int) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", identity)
	st, err := k8sstore.New(ctx, k8sstore.Options{Config: cfg, SystemNamespace: systemNS, Registry: kinds.Registry(), Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	res := manager.New(st, kinds.Registry())
	res.OnCreate(meshdefaults.Hook(res, log))
	kc := config.Default().Kubernetes
	kc.SystemNamespace = systemNS
	kc.LeaderElection.LeaseName = "trellis-test-leader"
	kc.LeaderElection.LeaseDuration = config.Duration(4 * time.Second)
	kc.LeaderElection.RenewDeadline = config.Duration(3 * time.Second)
	kc.LeaderElection.RetryPeriod = config.Duration(500 * time.Millisecond)
	kc.WebhookServer = config.WebhookServer{Address: fmt.Sprintf("127.0.0.1:%d", port), TLSCertFile: certFile, TLSKeyFile: keyFile}
	m, err := k8smanager.New(k8smanager.Options{RestConfig: cfg, Config: kc, Resources: res, Identity: identity, CACert: "PEM", Log: log,
		LeaderWork: []func(context.Context) error{func(ctx context.Context) error {
			if err := meshdefaults.EnsureDefaultMesh(ctx, res); err != nil {
				log.Error("default mesh", "err", err)
			}
			<-ctx.Done()
			return nil
		}}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &replica{mgr: m, res: res, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Start(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
	}
}

func eventually(t *testing.T, what string, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKubernetesMode runs the Kubernetes side against a real API server:
// webhooks the API server calls, injection, Pods and Services becoming
// Dataplanes, and leader election between two replicas.
func TestKubernetesMode(t *testing.T) {
	env := envtest.Shared(t)
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
	portA := freePort(t)
	a := startReplica(t, env.Config, "replica-a", certFile, keyFile, portA)
	select {
	case <-a.mgr.Elected():
	case <-time.After(20 * time.Second):
		t.Fatal("the only replica was not elected within 20s")
	}
	v, m := webhook.Configurations("trellis-test", fmt.Sprintf("https://127.0.0.1:%d", portA), caPEM)
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), v.Name, metav1.DeleteOptions{})
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), m.Name, metav1.DeleteOptions{})
	})

	t.Run("invalid policy refused with the field path", func(t *testing.T) {
		mt := schema.GroupVersionResource{Group: "kuma.io", Version: "v1alpha1", Resource: "meshtimeouts"}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kuma.io/v1alpha1", "kind": "MeshTimeout",
			"metadata": map[string]any{"name": "bad", "namespace": systemNS, "labels": map[string]any{"kuma.io/mesh": "default"}},
			"spec": map[string]any{"targetRef": map[string]any{"kind": "Mesh"},
				"to": []any{map[string]any{"targetRef": map[string]any{"kind": "Mesh"}, "default": map[string]any{"connectionTimeout": "soon"}}}},
		}}
		eventually(t, "the validating webhook refuses", 20*time.Second, func() error {
			_, err := dyn.Resource(mt).Namespace(systemNS).Create(ctx, obj, metav1.CreateOptions{})
			if err == nil {
				return errors.New("an invalid MeshTimeout was accepted")
			}
			if !strings.Contains(err.Error(), "spec.to[0].default.connectionTimeout") {
				return fmt.Errorf("error without the field path: %w", err)
			}
			return nil
		})
		obj.Object["spec"].(map[string]any)["to"].([]any)[0].(map[string]any)["default"] = map[string]any{"connectionTimeout": "2s"}
		obj.SetName("good")
		if _, err := dyn.Resource(mt).Namespace(systemNS).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("a valid MeshTimeout was refused: %v", err)
		}
	})

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"kuma.io/sidecar-injection": "enabled"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
	var created *corev1.Pod
	t.Run("pod injected", func(t *testing.T) {
		c, err := cs.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created = c
		names := func(cs []corev1.Container) (out []string) {
			for _, c := range cs {
				out = append(out, c.Name)
			}
			return out
		}
		if got := strings.Join(names(created.Spec.Containers), ","); got != "app,kuma-sidecar" {
			t.Fatalf("containers %s, want app,kuma-sidecar", got)
		}
		if got := strings.Join(names(created.Spec.InitContainers), ","); got != "kuma-init" {
			t.Fatalf("init containers %s, want kuma-init", got)
		}
		if created.Annotations["kuma.io/sidecar-injected"] != "true" {
			t.Fatalf("annotations %v", created.Annotations)
		}
	})
	if created == nil {
		t.FailNow()
	}

	t.Run("pod and service become a dataplane", func(t *testing.T) {
		http := "http"
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: &http}}}}
		if _, err := cs.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		created.Status.PodIP = "10.1.2.3"
		created.Status.PodIPs = []corev1.PodIP{{IP: "10.1.2.3"}}
		if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, _ := kinds.Registry().ByKind(kinds.Dataplane)
		eventually(t, "the Dataplane", 20*time.Second, func() error {
			res, err := a.res.Get(ctx, d, "default", "web-1.shop")
			if err != nil {
				return err
			}
			dp := res.Spec.(*mesh.Dataplane)
			n := dp.Networking
			if n.Address != "10.1.2.3" || len(n.Inbound) != 1 || n.Inbound[0].Port != 8080 {
				return fmt.Errorf("networking %+v", n)
			}
			tags := n.Inbound[0].Tags
			for k, v := range map[string]string{"kuma.io/service": "web_shop_svc_80", "kuma.io/protocol": "http", "app": "web",
				"k8s.kuma.io/namespace": "shop", "k8s.kuma.io/service-name": "web", "k8s.kuma.io/service-port": "80"} {
				if tags[k] != v {
					return fmt.Errorf("tag %s = %q, want %q (tags %v)", k, tags[k], v, tags)
				}
			}
			if n.TransparentProxying == nil || *n.TransparentProxying.RedirectPortInbound != 15006 {
				return fmt.Errorf("transparent proxying %+v", n.TransparentProxying)
			}
			return nil
		})
		dpGVR := schema.GroupVersionResource{Group: "kuma.io", Version: "v1alpha1", Resource: "dataplanes"}
		eventually(t, "the owner reference", 10*time.Second, func() error {
			o, err := dyn.Resource(dpGVR).Namespace("shop").Get(ctx, "web-1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			refs := o.GetOwnerReferences()
			if len(refs) != 1 || refs[0].UID != created.UID {
				return fmt.Errorf("owner references %+v", refs)
			}
			return nil
		})
	})

	t.Run("deleting the pod removes the dataplane", func(t *testing.T) {
		if err := cs.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		d, _ := kinds.Registry().ByKind(kinds.Dataplane)
		eventually(t, "the Dataplane gone", 20*time.Second, func() error {
			_, err := a.res.Get(ctx, d, "default", "web-1.shop")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("still there (err %v)", err)
		})
	})

	t.Run("two replicas elect one leader", func(t *testing.T) {
		b := startReplica(t, env.Config, "replica-b", certFile, keyFile, freePort(t))
		holder := func() string {
			l, err := cs.CoordinationV1().Leases(systemNS).Get(ctx, "trellis-test-leader", metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil {
				return ""
			}
			return *l.Spec.HolderIdentity
		}
		time.Sleep(2 * time.Second)
		select {
		case <-b.mgr.Elected():
			t.Fatal("the second replica leads while the first does")
		default:
		}
		if h := holder(); h != "replica-a" {
			t.Fatalf("Lease holder %q, want replica-a", h)
		}
		a.stop()
		select {
		case <-b.mgr.Elected():
		case <-time.After(20 * time.Second):
			t.Fatal("the second replica did not take over within 20s of the leader stopping")
		}
		if h := holder(); h != "replica-b" {
			t.Fatalf("Lease holder %q, want replica-b", h)
		}
	})
}
