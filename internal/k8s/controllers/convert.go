// Package controllers turns Kubernetes objects into mesh resources: a
// Dataplane per injected Pod, built from the Pod and the Services that
// select it, as Kuma's pod controller does
// (pkg/plugins/runtime/k8s/controllers in Kuma).
package controllers

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/k8s/annotations"
)

// ErrNoInbound: no Service selects the Pod on a port it has, so its
// Dataplane would have no inbound (which validation refuses).
var ErrNoInbound = errors.New("no Service selects the Pod on a port it exposes")

// ServiceTag is the kuma.io/service of a Service port, as Kuma names it:
// <service>_<namespace>_svc_<port>.
func ServiceTag(svc *corev1.Service, port int32) string {
	return fmt.Sprintf("%s_%s_svc_%d", svc.Name, svc.Namespace, port)
}

// Selects reports whether svc selects pod (a Service without a selector
// selects nothing).
func Selects(svc *corev1.Service, pod *corev1.Pod) bool {
	if svc.Namespace != pod.Namespace || len(svc.Spec.Selector) == 0 {
		return false
	}
	return labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels))
}

// DataplaneFor builds the Dataplane spec of an injected Pod that has an IP,
// from the Services of its namespace (those not selecting it are ignored).
func DataplaneFor(pod *corev1.Pod, services []*corev1.Service) (*mesh.Dataplane, error) {
	if pod.Status.PodIP == "" {
		return nil, errors.New("the Pod has no IP yet")
	}
	svcs := slices.Clone(services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	var inbounds []mesh.Inbound
	ready := podReady(pod)
	for _, svc := range svcs {
		if !Selects(svc, pod) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				continue // the mesh carries TCP
			}
			port, ok := containerPort(pod, sp)
			if !ok {
				continue
			}
			in := mesh.Inbound{Port: uint32(port), Tags: inboundTags(pod, svc, sp)}
			if ready != nil {
				in.Health = &mesh.InboundHealth{Ready: ready}
			}
			inbounds = append(inbounds, in)
		}
	}
	if len(inbounds) == 0 {
		return nil, ErrNoInbound
	}
	tp, err := transparentProxying(pod.Annotations)
	if err != nil {
		return nil, err
	}
	net := &mesh.DataplaneNetworking{Address: pod.Status.PodIP, Inbound: inbounds, TransparentProxying: tp}
	if p, ok, err := annotations.Port(pod.Annotations, annotations.EnvoyAdminPort); err != nil {
		return nil, err
	} else if ok && p != 0 {
		net.Admin = &mesh.EnvoyAdmin{Port: p}
	}
	return &mesh.Dataplane{Networking: net}, nil
}

// containerPort resolves a Service port's targetPort against the Pod's
// container ports (a name must match one; a number is taken as is; no
// targetPort means the Service port).
func containerPort(pod *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal, true
	}
	return sp.Port, sp.Port != 0
}

// inboundTags are the Pod's labels plus the tags naming the Service port.
func inboundTags(pod *corev1.Pod, svc *corev1.Service, sp corev1.ServicePort) map[string]string {
	tags := map[string]string{}
	maps.Copy(tags, pod.Labels)
	delete(tags, annotations.SidecarInjection)
	tags[mesh.ServiceTag] = ServiceTag(svc, sp.Port)
	tags[mesh.ProtocolTag] = protocolOf(svc, sp)
	tags[annotations.TagNamespace] = pod.Namespace
	tags[annotations.TagServiceName] = svc.Name
	tags[annotations.TagServicePort] = strconv.Itoa(int(sp.Port))
	return tags
}

// protocolOf is the port's appProtocol, else the Service annotation
// "<port>.service.kuma.io/protocol", else tcp. Values Trellis does not know
// become tcp, as Kuma does.
func protocolOf(svc *corev1.Service, sp corev1.ServicePort) string {
	p := ""
	if sp.AppProtocol != nil {
		p = strings.TrimPrefix(strings.ToLower(*sp.AppProtocol), "kuma.io/")
		if p == "kubernetes.io/h2c" {
			p = mesh.ProtocolHTTP2
		}
	}
	if p == "" {
		p = strings.ToLower(strings.TrimSpace(svc.Annotations[strconv.Itoa(int(sp.Port))+annotations.ServiceProtocolSuffix]))
	}
	if !mesh.IsSupportedProtocol(p) {
		return mesh.ProtocolTCP
	}
	return p
}

// podReady is the Pod's Ready condition, or nil when it has none yet.
func podReady(pod *corev1.Pod) *bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			r := c.Status == corev1.ConditionTrue
			return &r
		}
	}
	return nil
}

// transparentProxying reads what the injector configured from the Pod's
// annotations; nil when the Pod is not transparently proxied.
func transparentProxying(ann map[string]string) (*mesh.TransparentProxying, error) {
	if on, _ := annotations.Switch(ann[annotations.TransparentProxying]); !on {
		return nil, nil
	}
	tp := &mesh.TransparentProxying{}
	for key, dst := range map[string]**uint32{
		annotations.TransparentProxyingInbound:  &tp.RedirectPortInbound,
		annotations.TransparentProxyingOutbound: &tp.RedirectPortOutbound,
	} {
		p, ok, err := annotations.Port(ann, key)
		if err != nil {
			return nil, err
		}
		if ok {
			*dst = &p
		}
	}
	switch strings.ToLower(ann[annotations.TransparentProxyingIPFamily]) {
	case "dualstack":
		tp.IPFamilyMode = mesh.IPFamilyDualStack
	case "ipv4":
		tp.IPFamilyMode = mesh.IPFamilyIPv4
	case "ipv6":
		tp.IPFamilyMode = mesh.IPFamilyIPv6
	}
	tp.ReachableServices = annotations.List(ann[annotations.TransparentProxyingReachable])
	tp.DirectAccessServices = annotations.List(ann[annotations.DirectAccessServices])
	return tp, nil
}
