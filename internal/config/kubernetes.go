package config

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Environments trellis-cp runs in.
const (
	// EnvUniversal: VMs and bare metal; proxies register their Dataplanes.
	EnvUniversal = "universal"
	// EnvKubernetes: the store is the Kubernetes API server (CRDs), Pods of
	// meshed namespaces get a sidecar and their Dataplanes are built from
	// Pods and Services (internal/k8s).
	EnvKubernetes = "kubernetes"
)

// StoreKubernetes keeps resources as kuma.io custom resources; implied by
// environment kubernetes.
const StoreKubernetes = "kubernetes"

// Kubernetes configures the Kubernetes mode (environment: kubernetes).
type Kubernetes struct {
	// SystemNamespace is where the control plane runs: its leader Lease and
	// the global-scoped records that need a namespace live there.
	SystemNamespace string         `json:"systemNamespace"`
	LeaderElection  LeaderElection `json:"leaderElection"`
	WebhookServer   WebhookServer  `json:"webhookServer"`
	Injector        Injector       `json:"injector"`
}

// LeaderElection configures the coordination.k8s.io Lease the control-plane
// replicas compete for; the holder does the leader-only work.
type LeaderElection struct {
	LeaseName     string   `json:"leaseName"`
	LeaseDuration Duration `json:"leaseDuration"`
	RenewDeadline Duration `json:"renewDeadline"`
	RetryPeriod   Duration `json:"retryPeriod"`
}

// WebhookServer is the HTTPS server the API server calls for admission
// (validation of kuma.io resources, sidecar injection into Pods).
type WebhookServer struct {
	Address     string `json:"address"`
	TLSCertFile string `json:"tlsCertFile"`
	TLSKeyFile  string `json:"tlsKeyFile"`
}

// Injector configures the sidecar the mutating webhook adds to Pods.
type Injector struct {
	// Image of the trellis-dp sidecar; InitImage runs `trellisctl install
	// transparent-proxy` (it must hold trellisctl and iptables).
	Image     string `json:"image"`
	InitImage string `json:"initImage"`
	// CPAddress is the URL the sidecar reaches the DP server at.
	CPAddress string `json:"cpAddress"`
	// CACertFile, when set, is a PEM file (on the control plane) whose
	// content the sidecar receives to trust the DP server.
	CACertFile string `json:"caCertFile"`
	// UID is the sidecar's user; its traffic is not redirected.
	UID           uint32 `json:"uid"`
	AdminPort     uint32 `json:"adminPort"`
	CPURequest    string `json:"cpuRequest"`
	MemoryRequest string `json:"memoryRequest"`
	CPULimit      string `json:"cpuLimit"`
	MemoryLimit   string `json:"memoryLimit"`
	// NativeSidecar makes the sidecar an init container with restartPolicy
	// Always, on API servers of Kubernetes 1.29 or later.
	NativeSidecar             bool   `json:"nativeSidecar"`
	RedirectPortInbound       uint32 `json:"redirectPortInbound"`
	RedirectPortOutbound      uint32 `json:"redirectPortOutbound"`
	BuiltinDNS                bool   `json:"builtinDNS"`
	BuiltinDNSPort            uint32 `json:"builtinDNSPort"`
	ApplicationProbeProxyPort uint32 `json:"applicationProbeProxyPort"`
}

func defaultKubernetes() Kubernetes {
	return Kubernetes{
		SystemNamespace: "trellis-system",
		LeaderElection: LeaderElection{LeaseName: "trellis-cp-leader", LeaseDuration: Duration(15 * time.Second),
			RenewDeadline: Duration(10 * time.Second), RetryPeriod: Duration(2 * time.Second)},
		WebhookServer: WebhookServer{Address: ":5443"},
		Injector: Injector{
			Image: "trellis/trellis-dp:latest", InitImage: "trellis/trellisctl:latest",
			CPAddress: "https://trellis-control-plane.trellis-system:5678",
			UID:       5678, AdminPort: 9901,
			CPURequest: "50m", MemoryRequest: "64Mi", CPULimit: "1000m", MemoryLimit: "512Mi",
			RedirectPortInbound: 15006, RedirectPortOutbound: 15001, BuiltinDNS: true, BuiltinDNSPort: 15053,
			ApplicationProbeProxyPort: 9001,
		},
	}
}

func u32(p func(*Config) *uint32) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.FormatUint(uint64(*p(c)), 10) },
		func(c *Config, v string) error {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("must be a non-negative integer")
			}
			*p(c) = uint32(n)
			return nil
		}
}

type gs = func() (func(*Config) string, func(*Config, string) error)

func strKey(p func(*Config) *string) gs {
	return func() (func(*Config) string, func(*Config, string) error) { return str(p) }
}
func durKey(p func(*Config) *Duration) gs {
	return func() (func(*Config) string, func(*Config, string) error) { return dur(p) }
}
func u32Key(p func(*Config) *uint32) gs {
	return func() (func(*Config) string, func(*Config, string) error) { return u32(p) }
}
func boolKey(p func(*Config) *bool) gs {
	return func() (func(*Config) string, func(*Config, string) error) { return boolean(p) }
}

// kubernetesSettings are the keys of the Kubernetes mode, appended to the
// settings table.
var kubernetesSettings = []setting{
	mk("environment", "TRELLIS_ENVIRONMENT", "Where the control plane runs: universal, or kubernetes (implies store.type kubernetes: resources are kuma.io custom resources; Pods of namespaces labelled kuma.io/sidecar-injection=enabled get a sidecar and a Dataplane).",
		strKey(func(c *Config) *string { return &c.Environment })),
	mk("kubernetes.systemNamespace", "TRELLIS_K8S_SYSTEM_NAMESPACE", "Namespace the control plane runs in (its leader-election Lease lives there).",
		strKey(func(c *Config) *string { return &c.Kubernetes.SystemNamespace })),
	mk("kubernetes.leaderElection.leaseName", "TRELLIS_K8S_LEADER_ELECTION_LEASE_NAME", "Name of the coordination.k8s.io Lease the replicas compete for; the holder creates the default mesh and its resources and cleans up stale insights.",
		strKey(func(c *Config) *string { return &c.Kubernetes.LeaderElection.LeaseName })),
	mk("kubernetes.leaderElection.leaseDuration", "TRELLIS_K8S_LEADER_ELECTION_LEASE_DURATION", "How long a stopped leader's Lease blocks the others.",
		durKey(func(c *Config) *Duration { return &c.Kubernetes.LeaderElection.LeaseDuration })),
	mk("kubernetes.leaderElection.renewDeadline", "TRELLIS_K8S_LEADER_ELECTION_RENEW_DEADLINE", "How long the leader keeps trying to renew before it gives up leadership.",
		durKey(func(c *Config) *Duration { return &c.Kubernetes.LeaderElection.RenewDeadline })),
	mk("kubernetes.leaderElection.retryPeriod", "TRELLIS_K8S_LEADER_ELECTION_RETRY_PERIOD", "How often replicas try to acquire or renew the Lease.",
		durKey(func(c *Config) *Duration { return &c.Kubernetes.LeaderElection.RetryPeriod })),
	mk("kubernetes.webhookServer.address", "TRELLIS_K8S_WEBHOOK_ADDR", "Address of the admission webhook server (HTTPS) the API server calls: /validate-kuma-io-v1alpha1 and /inject-sidecar.",
		strKey(func(c *Config) *string { return &c.Kubernetes.WebhookServer.Address })),
	mk("kubernetes.webhookServer.tlsCertFile", "TRELLIS_K8S_WEBHOOK_TLS_CERT_FILE", "PEM certificate of the webhook server (its CA goes into the webhook configurations' caBundle). Required in environment kubernetes.",
		strKey(func(c *Config) *string { return &c.Kubernetes.WebhookServer.TLSCertFile })),
	mk("kubernetes.webhookServer.tlsKeyFile", "TRELLIS_K8S_WEBHOOK_TLS_KEY_FILE", "PEM key of the webhook server certificate; set with tlsCertFile.",
		strKey(func(c *Config) *string { return &c.Kubernetes.WebhookServer.TLSKeyFile })),
	mk("kubernetes.injector.image", "TRELLIS_K8S_INJECTOR_IMAGE", "Image of the injected trellis-dp sidecar.",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.Image })),
	mk("kubernetes.injector.initImage", "TRELLIS_K8S_INJECTOR_INIT_IMAGE", "Image of the init container that runs `trellisctl install transparent-proxy` (trellisctl and iptables).",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.InitImage })),
	mk("kubernetes.injector.cpAddress", "TRELLIS_K8S_INJECTOR_CP_ADDRESS", "URL injected sidecars reach the data plane server at (trellis-dp --cp-address).",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.CPAddress })),
	mk("kubernetes.injector.caCertFile", "TRELLIS_K8S_INJECTOR_CA_CERT_FILE", "PEM CA of the data plane server certificate, given to sidecars (env TRELLIS_CONTROL_PLANE_CA_CERT). Empty: the DP server's own certificate when generated.",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.CACertFile })),
	plainSetting(mk("kubernetes.injector.uid", "TRELLIS_K8S_INJECTOR_UID", "User and group id the sidecar runs as; the transparent proxy does not redirect its traffic.",
		u32Key(func(c *Config) *uint32 { return &c.Kubernetes.Injector.UID }))),
	plainSetting(mk("kubernetes.injector.adminPort", "TRELLIS_K8S_INJECTOR_ADMIN_PORT", "Port of the sidecar's admin API on 127.0.0.1 (its /ready is the sidecar's readiness probe).",
		u32Key(func(c *Config) *uint32 { return &c.Kubernetes.Injector.AdminPort }))),
	mk("kubernetes.injector.cpuRequest", "TRELLIS_K8S_INJECTOR_CPU_REQUEST", "CPU request of the sidecar.",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.CPURequest })),
	mk("kubernetes.injector.memoryRequest", "TRELLIS_K8S_INJECTOR_MEMORY_REQUEST", "Memory request of the sidecar.",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.MemoryRequest })),
	mk("kubernetes.injector.cpuLimit", "TRELLIS_K8S_INJECTOR_CPU_LIMIT", "CPU limit of the sidecar.",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.CPULimit })),
	mk("kubernetes.injector.memoryLimit", "TRELLIS_K8S_INJECTOR_MEMORY_LIMIT", "Memory limit of the sidecar.",
		strKey(func(c *Config) *string { return &c.Kubernetes.Injector.MemoryLimit })),
	plainSetting(mk("kubernetes.injector.nativeSidecar", "TRELLIS_K8S_INJECTOR_NATIVE_SIDECAR", "Inject the sidecar as a native sidecar (an init container with restartPolicy Always) when the API server is Kubernetes 1.29 or later (Kuma's experimental sidecarContainers).",
		boolKey(func(c *Config) *bool { return &c.Kubernetes.Injector.NativeSidecar }))),
	plainSetting(mk("kubernetes.injector.redirectPortInbound", "TRELLIS_K8S_INJECTOR_REDIRECT_PORT_INBOUND", "Port inbound traffic is redirected to in injected Pods.",
		u32Key(func(c *Config) *uint32 { return &c.Kubernetes.Injector.RedirectPortInbound }))),
	plainSetting(mk("kubernetes.injector.redirectPortOutbound", "TRELLIS_K8S_INJECTOR_REDIRECT_PORT_OUTBOUND", "Port outbound traffic is redirected to in injected Pods.",
		u32Key(func(c *Config) *uint32 { return &c.Kubernetes.Injector.RedirectPortOutbound }))),
	plainSetting(mk("kubernetes.injector.builtinDNS", "TRELLIS_K8S_INJECTOR_BUILTIN_DNS", "Redirect the Pods' DNS queries to the sidecar's DNS server (annotation kuma.io/builtin-dns overrides).",
		boolKey(func(c *Config) *bool { return &c.Kubernetes.Injector.BuiltinDNS }))),
	plainSetting(mk("kubernetes.injector.builtinDNSPort", "TRELLIS_K8S_INJECTOR_BUILTIN_DNS_PORT", "Port of the sidecar's DNS server.",
		u32Key(func(c *Config) *uint32 { return &c.Kubernetes.Injector.BuiltinDNSPort }))),
	plainSetting(mk("kubernetes.injector.applicationProbeProxyPort", "TRELLIS_K8S_INJECTOR_APPLICATION_PROBE_PROXY_PORT", "Port the application's HTTP, TCP and gRPC probes are rewritten to (Kuma's Application Probe Proxy); 0 leaves probes alone (annotation kuma.io/application-probe-proxy-port overrides).",
		u32Key(func(c *Config) *uint32 { return &c.Kubernetes.Injector.ApplicationProbeProxyPort }))),
}

func init() { settings = append(settings, kubernetesSettings...) }

// resolveEnvironment applies what environment kubernetes implies.
func (c *Config) resolveEnvironment() {
	if c.Environment == EnvKubernetes {
		c.Store.Type = StoreKubernetes
	}
}

// validateKubernetes checks the Kubernetes settings.
func (c *Config) validateKubernetes(bad func(key, format string, args ...any)) {
	switch c.Environment {
	case EnvUniversal:
		if c.Store.Type == StoreKubernetes {
			bad("store.type", "kubernetes needs environment kubernetes")
		}
		return
	case EnvKubernetes:
	default:
		bad("environment", "unknown value %q: must be universal or kubernetes", c.Environment)
		return
	}
	k := c.Kubernetes
	if k.SystemNamespace == "" {
		bad("kubernetes.systemNamespace", "must be set")
	}
	if k.LeaderElection.LeaseName == "" {
		bad("kubernetes.leaderElection.leaseName", "must be set")
	}
	if k.LeaderElection.RenewDeadline >= k.LeaderElection.LeaseDuration {
		bad("kubernetes.leaderElection.renewDeadline", "must be shorter than leaseDuration")
	}
	if k.LeaderElection.RetryPeriod <= 0 {
		bad("kubernetes.leaderElection.retryPeriod", "must be positive")
	}
	if _, _, err := net.SplitHostPort(k.WebhookServer.Address); err != nil {
		bad("kubernetes.webhookServer.address", "must be host:port: %v", err)
	}
	if k.WebhookServer.TLSCertFile == "" || k.WebhookServer.TLSKeyFile == "" {
		bad("kubernetes.webhookServer.tlsCertFile", "tlsCertFile and tlsKeyFile must be set in environment kubernetes (the API server calls the webhooks over HTTPS)")
	}
	if k.Injector.Image == "" {
		bad("kubernetes.injector.image", "must be set")
	}
	ports := []struct {
		key string
		p   uint32
	}{
		{"kubernetes.injector.adminPort", k.Injector.AdminPort}, {"kubernetes.injector.redirectPortInbound", k.Injector.RedirectPortInbound},
		{"kubernetes.injector.redirectPortOutbound", k.Injector.RedirectPortOutbound}, {"kubernetes.injector.builtinDNSPort", k.Injector.BuiltinDNSPort},
		{"kubernetes.injector.applicationProbeProxyPort", k.Injector.ApplicationProbeProxyPort},
	}
	for _, x := range ports {
		if x.p > 65535 || (x.p == 0 && x.key != "kubernetes.injector.applicationProbeProxyPort") {
			bad(x.key, "%d is not a port (1-65535)", x.p)
		}
	}
	qs := []struct{ key, v string }{
		{"kubernetes.injector.cpuRequest", k.Injector.CPURequest}, {"kubernetes.injector.memoryRequest", k.Injector.MemoryRequest},
		{"kubernetes.injector.cpuLimit", k.Injector.CPULimit}, {"kubernetes.injector.memoryLimit", k.Injector.MemoryLimit},
	}
	for _, q := range qs {
		if q.v == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q.v); err != nil {
			bad(q.key, "%q is not a Kubernetes quantity such as 100m or 64Mi", q.v)
		}
	}
}
