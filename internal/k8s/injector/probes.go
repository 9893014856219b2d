package injector

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Headers the probe proxy reads (Kuma's Application Probe Proxy).
const (
	HeaderScheme      = "x-kuma-probes-scheme"
	HeaderTimeout     = "x-kuma-probes-timeout"
	HeaderGRPCService = "x-kuma-probes-grpc-service"
)

// rewriteProbes points the application containers' HTTP, TCP and gRPC
// probes at the sidecar's probe proxy on port, which forwards them to the
// application past the transparent proxy, as Kuma's Application Probe
// Proxy: httpGet :P/path → :port/P/path; tcpSocket :P → httpGet
// :port/tcp/P; grpc :P → httpGet :port/grpc/P. Port 0 leaves them alone.
// It reports whether it rewrote any.
func rewriteProbes(pod *corev1.Pod, port uint32) (bool, error) {
	if port == 0 {
		return false, nil
	}
	any := false
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			ok, err := rewriteProbe(c, p, port)
			if err != nil {
				return false, fmt.Errorf("container %s: %w", c.Name, err)
			}
			any = any || ok
		}
	}
	return any, nil
}

func rewriteProbe(c *corev1.Container, p *corev1.Probe, port uint32) (bool, error) {
	proxy := intstr.FromInt32(int32(port))
	var headers []corev1.HTTPHeader
	if p.TimeoutSeconds > 0 {
		headers = append(headers, corev1.HTTPHeader{Name: HeaderTimeout, Value: strconv.Itoa(int(p.TimeoutSeconds))})
	}
	switch {
	case p.HTTPGet != nil:
		target, err := resolvePort(c, p.HTTPGet.Port)
		if err != nil {
			return false, err
		}
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			headers = append(headers, corev1.HTTPHeader{Name: HeaderScheme, Value: "HTTPS"})
		}
		path := p.HTTPGet.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		p.HTTPGet.Path = "/" + strconv.Itoa(int(target)) + path
		p.HTTPGet.Port = proxy
		p.HTTPGet.Scheme = corev1.URISchemeHTTP
		p.HTTPGet.HTTPHeaders = append(p.HTTPGet.HTTPHeaders, headers...)
	case p.TCPSocket != nil:
		target, err := resolvePort(c, p.TCPSocket.Port)
		if err != nil {
			return false, err
		}
		p.TCPSocket = nil
		p.HTTPGet = &corev1.HTTPGetAction{Path: "/tcp/" + strconv.Itoa(int(target)), Port: proxy, HTTPHeaders: headers}
	case p.GRPC != nil:
		if p.GRPC.Service != nil && *p.GRPC.Service != "" {
			headers = append(headers, corev1.HTTPHeader{Name: HeaderGRPCService, Value: *p.GRPC.Service})
		}
		target := p.GRPC.Port
		p.GRPC = nil
		p.HTTPGet = &corev1.HTTPGetAction{Path: "/grpc/" + strconv.Itoa(int(target)), Port: proxy, HTTPHeaders: headers}
	default:
		return false, nil // exec probes do not cross the network
	}
	return true, nil
}

// resolvePort turns a probe's port (number or container port name) into a
// number.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int32, error) {
	if p.Type == intstr.Int {
		return p.IntVal, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return int32(n), nil
	}
	return 0, fmt.Errorf("probe port %q names no port of the container", p.StrVal)
}
