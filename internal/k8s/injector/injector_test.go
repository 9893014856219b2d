package injector

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testConfig() Config {
	return Config{Image: "trellis/trellis-dp:t", InitImage: "trellis/trellisctl:t", CPAddress: "https://cp:5678", CACert: "PEM",
		UID: 5678, AdminPort: 9901, CPURequest: "50m", MemoryRequest: "64Mi", CPULimit: "1", MemoryLimit: "512Mi",
		RedirectPortInbound: 15006, RedirectPortOutbound: 15001, DNSPort: 15053, BuiltinDNS: true, ApplicationProbeProxyPort: 9001}
}

func appPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop",
		Annotations: map[string]string{"traffic.kuma.io/exclude-inbound-ports": "22"}},
		Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "app", Image: "app",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "ready", Port: intstr.FromString("http")}}, TimeoutSeconds: 3},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
			StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 8082, Service: ptr("health")}}},
		}}}}
}

func TestWanted(t *testing.T) {
	ns := func(v string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"kuma.io/sidecar-injection": v}}}
	}
	p := appPod()
	if !Wanted(p, ns("enabled")) || Wanted(p, ns("disabled")) || Wanted(p, &corev1.Namespace{}) {
		t.Fatal("the namespace label does not decide")
	}
	p.Annotations["kuma.io/sidecar-injection"] = "disabled"
	if Wanted(p, ns("enabled")) {
		t.Fatal("the Pod annotation does not override the namespace")
	}
	p = appPod()
	p.Labels = map[string]string{"kuma.io/sidecar-injection": "true"}
	if !Wanted(p, &corev1.Namespace{}) {
		t.Fatal("the Pod label does not override the namespace")
	}
	p.Annotations["kuma.io/sidecar-injected"] = "true"
	if Wanted(p, ns("enabled")) {
		t.Fatal("an injected Pod is injected again")
	}
}

func TestInject(t *testing.T) {
	p := appPod()
	if err := testConfig().Inject(p, "demo"); err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].Name != InitName {
		t.Fatalf("init containers %+v", p.Spec.InitContainers)
	}
	init := p.Spec.InitContainers[0]
	wantArgs := "install transparent-proxy --redirect-inbound-port 15006 --redirect-outbound-port 15001 --dp-uid 5678 --ip-family-mode dualstack --redirect-dns --redirect-dns-port 15053 --exclude-inbound-ports 22,9001"
	if got := strings.Join(init.Args, " "); got != wantArgs {
		t.Fatalf("init args\n got %s\nwant %s", got, wantArgs)
	}
	if !slices.Contains(init.SecurityContext.Capabilities.Add, "NET_ADMIN") {
		t.Fatal("init container lacks NET_ADMIN")
	}
	if len(p.Spec.Containers) != 2 || p.Spec.Containers[1].Name != SidecarName {
		t.Fatalf("containers %+v", p.Spec.Containers)
	}
	sc := p.Spec.Containers[1]
	wantSC := "run --cp-address https://cp:5678 --name $(POD_NAME).$(POD_NAMESPACE) --mesh demo --admin-addr 127.0.0.1:9901 --dataplane-token-file /var/run/secrets/kubernetes.io/serviceaccount/token --dns-port 15053"

	if got := strings.Join(sc.Args, " "); got != wantSC {
		t.Fatalf("sidecar args\n got %s\nwant %s", got, wantSC)
	}
	if sc.Resources.Limits.Memory().String() != "512Mi" || sc.Resources.Requests.Cpu().String() != "50m" {
		t.Fatalf("sidecar resources %+v", sc.Resources)
	}
	if *sc.SecurityContext.RunAsUser != 5678 {
		t.Fatal("sidecar does not run as the uid")
	}
	if sc.VolumeMounts[0].Name != TokenVolumeName || p.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken == nil {
		t.Fatal("the service-account token is not mounted")
	}
	app := p.Spec.Containers[0]
	rp := app.ReadinessProbe.HTTPGet
	if rp.Path != "/8080/ready" || rp.Port.IntValue() != 9001 || rp.HTTPHeaders[0].Name != HeaderTimeout {
		t.Fatalf("readiness probe %+v", rp)
	}
	if lp := app.LivenessProbe; lp.TCPSocket != nil || lp.HTTPGet.Path != "/tcp/8080" {
		t.Fatalf("liveness probe %+v", lp)
	}
	if sp := app.StartupProbe; sp.GRPC != nil || sp.HTTPGet.Path != "/grpc/8082" || sp.HTTPGet.HTTPHeaders[0].Value != "health" {
		t.Fatalf("startup probe %+v", sp)
	}
	for k, v := range map[string]string{"kuma.io/sidecar-injected": "true", "kuma.io/mesh": "demo", "kuma.io/transparent-proxying": "enabled",
		"kuma.io/transparent-proxying-inbound-port": "15006", "kuma.io/application-probe-proxy-port": "9001", "kuma.io/builtin-dns": "enabled"} {
		if p.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, p.Annotations[k], v)
		}
	}
}

func TestInjectNativeSidecarAndOverrides(t *testing.T) {
	c := testConfig()
	c.NativeSidecar = true
	p := appPod()
	p.Annotations["kuma.io/application-probe-proxy-port"] = "0"
	p.Annotations["kuma.io/builtin-dns"] = "disabled"
	if err := c.Inject(p, "default"); err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Containers) != 1 || len(p.Spec.InitContainers) != 2 {
		t.Fatalf("native sidecar: %d containers, %d init containers", len(p.Spec.Containers), len(p.Spec.InitContainers))
	}
	sc := p.Spec.InitContainers[1]
	if sc.Name != SidecarName || sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatalf("native sidecar %+v", sc)
	}
	if p.Spec.Containers[0].ReadinessProbe.HTTPGet.Path != "ready" {
		t.Fatal("probes rewritten with the probe proxy off")
	}
	if strings.Contains(strings.Join(p.Spec.InitContainers[0].Args, " "), "--redirect-dns") {
		t.Fatal("DNS redirected with builtin DNS off")
	}
	p = appPod()
	p.Spec.ServiceAccountName = ""
	if err := testConfig().Inject(p, "default"); err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(p.Spec.Containers[1].Args, " "); strings.Contains(args, "--dataplane-token-file") || len(p.Spec.Volumes) != 0 {
		t.Fatalf("no service account, yet a token: %s %+v", args, p.Spec.Volumes)
	}
	p = appPod()
	p.Annotations["kuma.io/transparent-proxying-inbound-port"] = "99999"
	if err := c.Inject(p, "default"); err == nil || !strings.Contains(err.Error(), "kuma.io/transparent-proxying-inbound-port") {
		t.Fatalf("bad annotation: %v", err)
	}
}
