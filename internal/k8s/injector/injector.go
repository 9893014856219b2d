// Package injector adds the trellis-dp sidecar to Pods of meshed namespaces,
// as Kuma's injector does (pkg/plugins/runtime/k8s/webhooks/injector): an
// init container that installs the transparent proxy (`trellisctl install
// transparent-proxy`), the sidecar (a container, or a native sidecar: an
// init container with restartPolicy Always), the service-account token the
// sidecar authenticates with, the application's probes rewritten through
// the sidecar's probe proxy, and the annotations the Pod converter reads.
//
// Inject is a pure function of the Pod, its namespace and the Config.
package injector

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/trellis-mesh/trellis/internal/k8s/annotations"
)

// Container and volume names of what the injector adds (Kuma's names, so
// `kubectl logs -c kuma-sidecar` and tools built for Kuma keep working).
const (
	SidecarName     = "kuma-sidecar"
	InitName        = "kuma-init"
	TokenVolumeName = "kuma-sidecar-token"
	// TokenDir is where the sidecar sees its service-account token.
	TokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Config is what the injector puts into Pods.
type Config struct {
	Image, InitImage string
	// CPAddress is the sidecar's --cp-address.
	CPAddress string
	// CACert is the PEM the sidecar trusts the DP server with (env
	// TRELLIS_CONTROL_PLANE_CA_CERT); empty: none.
	CACert string
	UID    int64
	// AdminPort is the sidecar's admin port on 127.0.0.1.
	AdminPort                                          uint32
	CPURequest, MemoryRequest, CPULimit, MemoryLimit   string
	NativeSidecar                                      bool
	RedirectPortInbound, RedirectPortOutbound, DNSPort uint32
	BuiltinDNS                                         bool
	ApplicationProbeProxyPort                          uint32
}

// Wanted reports whether a Pod is to be injected: the Pod's
// kuma.io/sidecar-injection label (or annotation) wins over its namespace's
// label; Pods on the host network and Pods already injected are left alone.
func Wanted(pod *corev1.Pod, ns *corev1.Namespace) bool {
	if pod.Spec.HostNetwork || pod.Annotations[annotations.SidecarInjected] == "true" {
		return false
	}
	for _, c := range slices.Concat(pod.Spec.Containers, pod.Spec.InitContainers) {
		if c.Name == SidecarName {
			return false
		}
	}
	for _, v := range []string{pod.Labels[annotations.SidecarInjection], pod.Annotations[annotations.SidecarInjection]} {
		if on, ok := annotations.Switch(v); ok {
			return on
		}
	}
	on, _ := annotations.Switch(ns.Labels[annotations.SidecarInjection])
	return on
}

// settings are the Config as overridden by the Pod's annotations.
type settings struct {
	inbound, outbound, dns, probePort, uid uint32
	dnsOn                                  bool
}

func (c Config) settingsFor(ann map[string]string) (settings, error) {
	s := settings{inbound: c.RedirectPortInbound, outbound: c.RedirectPortOutbound, dns: c.DNSPort,
		probePort: c.ApplicationProbeProxyPort, uid: uint32(c.UID), dnsOn: c.BuiltinDNS}
	for key, dst := range map[string]*uint32{
		annotations.TransparentProxyingInbound: &s.inbound, annotations.TransparentProxyingOutbound: &s.outbound,
		annotations.BuiltinDNSPort: &s.dns, annotations.ApplicationProbeProxyPort: &s.probePort,
	} {
		p, ok, err := annotations.Port(ann, key)
		if err != nil {
			return s, err
		}
		if ok {
			*dst = p
		}
	}
	if v, present := ann[annotations.BuiltinDNS]; present {
		on, ok := annotations.Switch(v)
		if !ok {
			return s, &annotations.Error{Key: annotations.BuiltinDNS, Value: v, Reason: "must be enabled or disabled"}
		}
		s.dnsOn = on
	}
	return s, nil
}

// Inject adds the sidecar and the init container to pod, in place, for
// mesh. It fails on a bad annotation, naming it.
func (c Config) Inject(pod *corev1.Pod, mesh string) error {
	s, err := c.settingsFor(pod.Annotations)
	if err != nil {
		return err
	}
	rewritten, err := rewriteProbes(pod, s.probePort)
	if err != nil {
		return err
	}
	init, err := c.initContainer(pod, s, rewritten)
	if err != nil {
		return err
	}
	sidecar, err := c.sidecar(pod, mesh, s)
	if err != nil {
		return err
	}
	if !hasMount(pod, TokenDir) && pod.Spec.ServiceAccountName != "" {
		pod.Spec.Volumes = append(pod.Spec.Volumes, tokenVolume())
	}
	if c.NativeSidecar {
		always := corev1.ContainerRestartPolicyAlways
		sidecar.RestartPolicy = &always
		pod.Spec.InitContainers = append([]corev1.Container{init, sidecar}, pod.Spec.InitContainers...)
	} else {
		pod.Spec.InitContainers = append([]corev1.Container{init}, pod.Spec.InitContainers...)
		pod.Spec.Containers = append(pod.Spec.Containers, sidecar)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	dns := "disabled"
	if s.dnsOn {
		dns = "enabled"
	}
	maps.Copy(pod.Annotations, map[string]string{
		annotations.SidecarInjected:             "true",
		annotations.Mesh:                        mesh,
		annotations.TransparentProxying:         "enabled",
		annotations.TransparentProxyingInbound:  strconv.Itoa(int(s.inbound)),
		annotations.TransparentProxyingOutbound: strconv.Itoa(int(s.outbound)),
		annotations.TransparentProxyingEBPF:     "disabled",
		annotations.SidecarUID:                  strconv.Itoa(int(s.uid)),
		annotations.BuiltinDNS:                  dns,
		annotations.BuiltinDNSPort:              strconv.Itoa(int(s.dns)),
		annotations.EnvoyAdminPort:              strconv.Itoa(int(c.AdminPort)),
		annotations.ApplicationProbeProxyPort:   strconv.Itoa(int(s.probePort)),
	})
	if _, ok := pod.Annotations[annotations.TransparentProxyingIPFamily]; !ok {
		pod.Annotations[annotations.TransparentProxyingIPFamily] = "dualstack"
	}
	return nil
}

// sidecar is the trellis-dp container.
func (c Config) sidecar(pod *corev1.Pod, mesh string, s settings) (corev1.Container, error) {
	res, err := c.resources(c.CPURequest, c.MemoryRequest, c.CPULimit, c.MemoryLimit)
	if err != nil {
		return corev1.Container{}, err
	}
	uid := int64(s.uid)
	args := []string{"run",
		"--cp-address", c.CPAddress,
		"--name", "$(POD_NAME).$(POD_NAMESPACE)",
		"--mesh", mesh,
		"--admin-addr", "127.0.0.1:" + strconv.Itoa(int(c.AdminPort)),
	}
	mount, hasToken := c.tokenMount(pod)
	if hasToken {
		args = append(args, "--dataplane-token-file", TokenDir+"/token")
	}
	if s.dnsOn {
		args = append(args, "--dns-port", strconv.Itoa(int(s.dns)))
	} else {
		args = append(args, "--dns-port", "0")
	}
	if s.probePort != 9001 { // trellis-dp's default without --dataplane-file (internal/dataplane/probes)
		args = append(args, "--application-probe-proxy-port", strconv.Itoa(int(s.probePort)))
	}
	env := []corev1.EnvVar{
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("INSTANCE_IP", "status.podIP"),
	}
	if c.CACert != "" {
		env = append(env, corev1.EnvVar{Name: "TRELLIS_CONTROL_PLANE_CA_CERT", Value: c.CACert})
	}
	ct := corev1.Container{
		Name: SidecarName, Image: c.Image, ImagePullPolicy: corev1.PullIfNotPresent,
		Args: args, Env: env, Resources: res,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &uid, RunAsGroup: &uid, RunAsNonRoot: ptr(true),
			AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	if hasToken {
		ct.VolumeMounts = []corev1.VolumeMount{mount}
	}
	return ct, nil
}

// tokenMount is the app's service-account token mount when it has one (as
// Kuma copies it), else the projected token volume the injector adds when
// the Pod has a service account; false when the Pod has neither (the API
// server's ServiceAccount admission is off).
func (c Config) tokenMount(pod *corev1.Pod) (corev1.VolumeMount, bool) {
	for _, ct := range pod.Spec.Containers {
		for _, m := range ct.VolumeMounts {
			if m.MountPath == TokenDir {
				return m, true
			}
		}
	}
	if pod.Spec.ServiceAccountName == "" {
		return corev1.VolumeMount{}, false
	}
	return corev1.VolumeMount{Name: TokenVolumeName, MountPath: TokenDir, ReadOnly: true}, true
}

func hasMount(pod *corev1.Pod, path string) bool {
	for _, ct := range pod.Spec.Containers {
		for _, m := range ct.VolumeMounts {
			if m.MountPath == path {
				return true
			}
		}
	}
	return false
}

// tokenVolume projects the Pod's service-account token (and the cluster
// CA) for the sidecar.
func tokenVolume() corev1.Volume {
	exp := int64(3607)
	return corev1.Volume{Name: TokenVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

// initContainer runs `trellisctl install transparent-proxy` with the
// Pod's redirect settings and exclusions (the probe proxy's port is never
// redirected, as in Kuma).
func (c Config) initContainer(pod *corev1.Pod, s settings, probesRewritten bool) (corev1.Container, error) {
	args := []string{"install", "transparent-proxy",
		"--redirect-inbound-port", strconv.Itoa(int(s.inbound)),
		"--redirect-outbound-port", strconv.Itoa(int(s.outbound)),
		"--dp-uid", strconv.Itoa(int(s.uid)),
		"--ip-family-mode", ipFamily(pod.Annotations[annotations.TransparentProxyingIPFamily]),
	}
	if s.dnsOn {
		args = append(args, "--redirect-dns", "--redirect-dns-port", strconv.Itoa(int(s.dns)))
	}
	inPorts := annotations.List(pod.Annotations[annotations.ExcludeInboundPorts])
	if probesRewritten && s.probePort != 0 {
		inPorts = append(inPorts, strconv.Itoa(int(s.probePort)))
	}
	for _, x := range []struct {
		flag string
		v    []string
	}{
		{"--exclude-inbound-ports", inPorts},
		{"--exclude-outbound-ports", annotations.List(pod.Annotations[annotations.ExcludeOutboundPorts])},
		{"--exclude-inbound-ips", annotations.List(pod.Annotations[annotations.ExcludeInboundIPs])},
		{"--exclude-outbound-ips", annotations.List(pod.Annotations[annotations.ExcludeOutboundIPs])},
	} {
		if len(x.v) > 0 {
			args = append(args, x.flag, strings.Join(x.v, ","))
		}
	}
	res, err := c.resources("20m", "20Mi", "100m", "50Mi")
	if err != nil {
		return corev1.Container{}, err
	}
	root := int64(0)
	return corev1.Container{
		Name: InitName, Image: c.InitImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"trellisctl"}, Args: args, Resources: res,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &root, RunAsGroup: &root, RunAsNonRoot: ptr(false),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}},
		},
	}, nil
}

func ipFamily(v string) string {
	if strings.EqualFold(v, "ipv4") {
		return "ipv4"
	}
	return "dualstack"
}

// resources builds requests and limits; an empty value is left out.
func (c Config) resources(cpuReq, memReq, cpuLim, memLim string) (corev1.ResourceRequirements, error) {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, x := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		v    string
	}{
		{r.Requests, corev1.ResourceCPU, cpuReq}, {r.Requests, corev1.ResourceMemory, memReq},
		{r.Limits, corev1.ResourceCPU, cpuLim}, {r.Limits, corev1.ResourceMemory, memLim},
	} {
		if x.v == "" {
			continue
		}
		q, err := resource.ParseQuantity(x.v)
		if err != nil {
			return r, fmt.Errorf("sidecar %s %s %q: %w", x.name, "quantity", x.v, err)
		}
		x.list[x.name] = q
	}
	return r, nil
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
}

func ptr[T any](v T) *T { return &v }
