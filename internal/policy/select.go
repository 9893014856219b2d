package policy

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/mesh"
)

// selection is what a top-level targetRef selects of one proxy.
type selection struct {
	// inbounds are indexes into networking.inbound.
	inbounds []int
	// proxy is set when the policy applies to the proxy (for to[] and a
	// top-level default).
	proxy bool
}

// selectProxy returns what ref selects of dp, or a note when the kind
// cannot be matched yet.
func selectProxy(dp Dataplane, ref *common.TargetRef) (selection, string) {
	kind := common.TopKind(ref)
	switch kind {
	case common.Mesh:
		if !proxyTypeOK(dp, ref) {
			return selection{}, ""
		}
		return byTags(dp, nil, true), ""
	case common.MeshSubset:
		if !proxyTypeOK(dp, ref) {
			return selection{}, ""
		}
		return byTags(dp, ref.Tags, len(ref.Tags) == 0), ""
	case common.MeshService:
		if ref.Name == "" {
			return selection{}, "MeshService targetRefs by labels need MeshService resources, which are not supported yet"
		}
		return byTags(dp, map[string]string{mesh.ServiceTag: ref.Name}, false), ""
	case common.MeshServiceSubset:
		tags := map[string]string{mesh.ServiceTag: ref.Name}
		for k, v := range ref.Tags {
			tags[k] = v
		}
		return byTags(dp, tags, false), ""
	case common.Dataplane:
		return byDataplane(dp, ref), ""
	case common.MeshGateway:
		return selection{}, "MeshGateway targetRefs select builtin gateways, which are not supported yet"
	case common.MeshHTTPRoute:
		return selection{}, "MeshHTTPRoute targetRefs are not supported yet"
	}
	return selection{}, fmt.Sprintf("top-level targetRef kind %q is not supported", kind)
}

// proxyTypeOK applies a Mesh or MeshSubset ref's proxyTypes: a proxy with
// networking.gateway is a Gateway, any other a Sidecar.
func proxyTypeOK(dp Dataplane, ref *common.TargetRef) bool {
	if ref == nil || len(ref.ProxyTypes) == 0 {
		return true
	}
	typ := common.Sidecar
	if dp.Spec != nil && dp.Spec.Networking != nil && dp.Spec.Networking.Gateway != nil {
		typ = common.Gateway
	}
	return slices.Contains(ref.ProxyTypes, typ)
}

// byTags selects the inbounds (and the gateway) whose tags include tags;
// whole says the proxy is selected even with no inbound or gateway.
func byTags(dp Dataplane, tags map[string]string, whole bool) selection {
	var s selection
	n := networking(dp)
	if n == nil {
		s.proxy = whole
		return s
	}
	for i, in := range n.Inbound {
		if in.EffectiveState() != mesh.InboundIgnored && Subset(tags).Matches(in.Tags) {
			s.inbounds = append(s.inbounds, i)
		}
	}
	gateway := n.Gateway != nil && Subset(tags).Matches(n.Gateway.Tags)
	s.proxy = whole || gateway || len(s.inbounds) > 0
	return s
}

// byDataplane selects by the proxy's name or labels; sectionName keeps one
// inbound (by name, or by port for an unnamed one).
func byDataplane(dp Dataplane, ref *common.TargetRef) selection {
	if ref.Name != "" && ref.Name != dp.Name {
		return selection{}
	}
	if ref.Name == "" && !Subset(ref.Labels).Matches(dp.Labels) {
		return selection{}
	}
	if ref.SectionName == "" {
		return byTags(dp, nil, true)
	}
	var s selection
	n := networking(dp)
	if n == nil {
		return s
	}
	for i, in := range n.Inbound {
		if in.EffectiveState() == mesh.InboundIgnored {
			continue
		}
		if in.Name == ref.SectionName || (in.Name == "" && strconv.FormatUint(uint64(in.Port), 10) == ref.SectionName) {
			s.inbounds = append(s.inbounds, i)
		}
	}
	s.proxy = len(s.inbounds) > 0
	return s
}

func networking(dp Dataplane) *mesh.DataplaneNetworking {
	if dp.Spec == nil {
		return nil
	}
	return dp.Spec.Networking
}

// subsetOf turns a section's targetRef into the tags it stands for, or
// false when its kind cannot be expressed as tags.
func subsetOf(ref common.TargetRef) (Subset, bool) {
	switch ref.Kind {
	case common.Mesh:
		return Subset{}, true
	case common.MeshSubset:
		return copyTags(ref.Tags), true
	case common.MeshService:
		if ref.Name == "" {
			return nil, false
		}
		return Subset{mesh.ServiceTag: ref.Name}, true
	case common.MeshServiceSubset:
		s := copyTags(ref.Tags)
		s[mesh.ServiceTag] = ref.Name
		return s, true
	}
	return nil, false
}

func copyTags(tags map[string]string) Subset {
	s := Subset{}
	for k, v := range tags {
		s[k] = v
	}
	return s
}
