package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// Node metadata keys (docs/xds-contract.md).
const (
	MetaDataplane    = "dataplane.resource"
	MetaAdminAddress = "dataplane.admin.address"
	MetaVersion      = "version.trellisDp"
	// MetaProxyless marks a proxyless gRPC client; MetaMesh names its mesh.
	MetaProxyless = "trellis.io/proxyless"
	MetaMesh      = "trellis.io/mesh"
)

// proxyKey identifies a proxy: a Dataplane, or a proxyless client by node ID.
type proxyKey struct {
	Mesh string
	Name string
}

func (k proxyKey) String() string { return k.Mesh + "/" + k.Name }

// nodeInfo is what the control plane learns from an xDS node.
type nodeInfo struct {
	key       proxyKey
	nodeID    string
	proxyless bool
	// dataplane is the Dataplane the proxy presented, nil if none.
	dataplane *resource.Resource
	version   string
}

var errNoIdentity = errors.New("the node carries neither a dataplane.resource nor trellis.io/proxyless metadata")

// identify reads a node: a sidecar presents its Dataplane in the metadata,
// a proxyless gRPC client says so and names its mesh.
func identify(node *corev3.Node, decode func(mesh, name string, data []byte) (*resource.Resource, error)) (*nodeInfo, error) {
	if node == nil {
		return nil, errors.New("the first request carries no node")
	}
	fields := node.GetMetadata().GetFields()
	info := &nodeInfo{nodeID: node.GetId(), version: fields[MetaVersion].GetStringValue()}
	if fields[MetaProxyless].GetBoolValue() {
		info.proxyless = true
		info.key = proxyKey{Mesh: fields[MetaMesh].GetStringValue(), Name: node.GetId()}
		if info.key.Mesh == "" {
			return nil, fmt.Errorf("proxyless node %q: metadata %s must name the mesh", node.GetId(), MetaMesh)
		}
		return info, nil
	}
	raw := fields[MetaDataplane].GetStringValue()
	if raw == "" {
		return nil, fmt.Errorf("node %q: %w", node.GetId(), errNoIdentity)
	}
	var head struct {
		Mesh string `json:"mesh"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(raw), &head); err != nil {
		return nil, fmt.Errorf("node %q: %s is not JSON: %w", node.GetId(), MetaDataplane, err)
	}
	mesh, name := head.Mesh, head.Name
	if mesh == "" || name == "" {
		mesh, name, _ = strings.Cut(node.GetId(), ".")
	}
	res, err := decode(mesh, name, []byte(raw))
	if err != nil {
		return nil, fmt.Errorf("node %q: invalid Dataplane: %w", node.GetId(), err)
	}
	info.key = proxyKey{Mesh: mesh, Name: name}
	info.dataplane = res
	return info, nil
}
