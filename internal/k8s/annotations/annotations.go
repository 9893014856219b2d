// Package annotations names the labels and annotations Kubernetes mode reads
// and writes on Namespaces, Pods and Services. They are Kuma's, so Kuma
// manifests keep working (pkg/plugins/runtime/k8s/metadata in Kuma).
package annotations

import (
	"strconv"
	"strings"
)

// Labels and annotations.
const (
	// SidecarInjection (label on a Namespace or Pod, or Pod annotation):
	// enabled/true or disabled/false. The Pod's value wins.
	SidecarInjection = "kuma.io/sidecar-injection"
	// SidecarInjected marks a Pod the injector changed ("true").
	SidecarInjected = "kuma.io/sidecar-injected"
	// Mesh (label or annotation on a Pod or Namespace, label on policies)
	// names the mesh; default "default".
	Mesh = "kuma.io/mesh"
	// TransparentProxying is "enabled" on injected Pods.
	TransparentProxying          = "kuma.io/transparent-proxying"
	TransparentProxyingInbound   = "kuma.io/transparent-proxying-inbound-port"
	TransparentProxyingOutbound  = "kuma.io/transparent-proxying-outbound-port"
	TransparentProxyingEBPF      = "kuma.io/transparent-proxying-ebpf"
	TransparentProxyingIPFamily  = "kuma.io/transparent-proxying-ip-family-mode"
	TransparentProxyingReachable = "kuma.io/transparent-proxying-reachable-services"
	DirectAccessServices         = "kuma.io/direct-access-services"
	SidecarUID                   = "kuma.io/sidecar-uid"
	BuiltinDNS                   = "kuma.io/builtin-dns"
	BuiltinDNSPort               = "kuma.io/builtin-dns-port"
	EnvoyAdminPort               = "kuma.io/envoy-admin-port"
	ApplicationProbeProxyPort    = "kuma.io/application-probe-proxy-port"
	// Exclusions from traffic redirection.
	ExcludeInboundPorts  = "traffic.kuma.io/exclude-inbound-ports"
	ExcludeOutboundPorts = "traffic.kuma.io/exclude-outbound-ports"
	ExcludeInboundIPs    = "traffic.kuma.io/exclude-inbound-ips"
	ExcludeOutboundIPs   = "traffic.kuma.io/exclude-outbound-ips"
	// ServiceProtocolSuffix: a Service annotation "<port>.service.kuma.io/protocol"
	// sets the kuma.io/protocol of that port's inbounds.
	ServiceProtocolSuffix = ".service.kuma.io/protocol"
)

// Tags the Pod converter adds to every inbound.
const (
	TagNamespace   = "k8s.kuma.io/namespace"
	TagServiceName = "k8s.kuma.io/service-name"
	TagServicePort = "k8s.kuma.io/service-port"
)

// DefaultMesh is the mesh of Pods and policies that name none.
const DefaultMesh = "default"

// Switch reads an enabled/disabled annotation or label value: it reports
// the value and whether it was a recognised one.
func Switch(v string) (on, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "enabled", "true", "yes":
		return true, true
	case "disabled", "false", "no":
		return false, true
	}
	return false, false
}

// Port reads a port annotation; ok is false when absent, err when bad.
func Port(m map[string]string, key string) (port uint32, ok bool, err error) {
	v, present := m[key]
	if !present {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	if err != nil {
		return 0, true, &Error{Key: key, Value: v, Reason: "must be a port number (0-65535)"}
	}
	return uint32(n), true, nil
}

// Error is a bad annotation value.
type Error struct {
	Key, Value, Reason string
}

func (e *Error) Error() string {
	return "annotation " + e.Key + "=" + strconv.Quote(e.Value) + ": " + e.Reason
}

// MeshOf returns the mesh a Pod belongs to: its label or annotation, then
// its namespace's, then "default".
func MeshOf(pod, podAnn, ns, nsAnn map[string]string) string {
	for _, m := range []map[string]string{pod, podAnn, ns, nsAnn} {
		if v := m[Mesh]; v != "" {
			return v
		}
	}
	return DefaultMesh
}

// List splits a comma-separated annotation value, dropping empty items.
func List(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
