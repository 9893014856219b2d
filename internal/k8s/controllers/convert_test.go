package controllers

import (
	"encoding/json"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{"app": "web", "version": "v2"},
			Annotations: map[string]string{
				"kuma.io/sidecar-injected": "true", "kuma.io/transparent-proxying": "enabled",
				"kuma.io/transparent-proxying-inbound-port": "15006", "kuma.io/transparent-proxying-outbound-port": "15001",
				"kuma.io/transparent-proxying-ip-family-mode": "dualstack", "kuma.io/envoy-admin-port": "9901",
			}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}}}}},
		Status: corev1.PodStatus{PodIP: "10.0.0.7"},
	}
}

func svc(name string, sel map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec: corev1.ServiceSpec{Selector: sel, Ports: ports}}
}

func TestDataplaneForPodAndServices(t *testing.T) {
	h2 := "kuma.io/http2"
	web := svc("web", map[string]string{"app": "web"},
		corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr("http")},
		corev1.ServicePort{Name: "grpc", Port: 81, TargetPort: intstr.FromInt32(8081), AppProtocol: &h2},
		corev1.ServicePort{Name: "missing", Port: 82, TargetPort: intstr.FromString("nope")},
		corev1.ServicePort{Name: "udp", Port: 53, Protocol: corev1.ProtocolUDP})
	metrics := svc("web-metrics", map[string]string{"app": "web"}, corev1.ServicePort{Port: 9090})
	metrics.Annotations = map[string]string{"9090.service.kuma.io/protocol": "HTTP"}
	other := svc("other", map[string]string{"app": "db"}, corev1.ServicePort{Port: 5432})
	noSel := svc("external", nil, corev1.ServicePort{Port: 443})

	dp, err := DataplaneFor(testPod(), []*corev1.Service{web, metrics, other, noSel})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(dp)
	want := `{"networking":{"address":"10.0.0.7","inbound":[` +
		`{"port":8080,"tags":{"app":"web","k8s.kuma.io/namespace":"shop","k8s.kuma.io/service-name":"web","k8s.kuma.io/service-port":"80","kuma.io/protocol":"http","kuma.io/service":"web_shop_svc_80","version":"v2"}},` +
		`{"port":8081,"tags":{"app":"web","k8s.kuma.io/namespace":"shop","k8s.kuma.io/service-name":"web","k8s.kuma.io/service-port":"81","kuma.io/protocol":"http2","kuma.io/service":"web_shop_svc_81","version":"v2"}},` +
		`{"port":9090,"tags":{"app":"web","k8s.kuma.io/namespace":"shop","k8s.kuma.io/service-name":"web-metrics","k8s.kuma.io/service-port":"9090","kuma.io/protocol":"http","kuma.io/service":"web-metrics_shop_svc_9090","version":"v2"}}],` +
		`"transparentProxying":{"redirectPortInbound":15006,"redirectPortOutbound":15001,"ipFamilyMode":"DualStack"},"admin":{"port":9901}}}`
	if string(got) != want {
		t.Fatalf("Dataplane\n got %s\nwant %s", got, want)
	}
	if err := dp.Validate(); err != nil {
		t.Fatalf("the built Dataplane does not validate: %v", err)
	}
}

func TestDataplaneForNeedsIPAndService(t *testing.T) {
	p := testPod()
	if _, err := DataplaneFor(p, nil); !errors.Is(err, ErrNoInbound) {
		t.Fatalf("no Service: err = %v, want ErrNoInbound", err)
	}
	p.Status.PodIP = ""
	if _, err := DataplaneFor(p, []*corev1.Service{svc("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80})}); err == nil {
		t.Fatal("a Pod without IP got a Dataplane")
	}
	p = testPod()
	p.Annotations["kuma.io/transparent-proxying-inbound-port"] = "x"
	_, err := DataplaneFor(p, []*corev1.Service{svc("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 80})})
	if err == nil || err.Error() != `annotation kuma.io/transparent-proxying-inbound-port="x": must be a port number (0-65535)` {
		t.Fatalf("bad annotation: err = %v", err)
	}
}

func TestReadyCondition(t *testing.T) {
	p := testPod()
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	dp, err := DataplaneFor(p, []*corev1.Service{svc("web", map[string]string{"app": "web"}, corev1.ServicePort{Port: 8080})})
	if err != nil {
		t.Fatal(err)
	}
	h := dp.Networking.Inbound[0].Health
	if h == nil || h.Ready == nil || *h.Ready {
		t.Fatalf("health = %+v, want ready false", h)
	}
}
