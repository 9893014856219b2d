package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// Node metadata keys (docs/xds-contract.md).
const (
	MetaDataplane    = "dataplane.resource"
	MetaAdminAddress = "dataplane.admin.address"
	MetaVersion      = "version.trellisDp"
	// MetaDNSPort is the port of the proxy's DNS server on 127.0.0.1, as
	// Kuma names it (a string or a number; absent or 0: no DNS server).
	MetaDNSPort = "dataplane.dns.port"
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
	// dnsPort is the port of the proxy's DNS server (MetaDNSPort), 0 if none.
	dnsPort uint32
	// zoneProxy is the kind (ZoneIngress, ZoneEgress) of a zone proxy,
	// whose resource is dataplane (zoneproxy.go); empty for sidecars.
	zoneProxy string
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
	port, err := dnsPortOf(fields[MetaDNSPort])
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node.GetId(), err)
	}
	info.dnsPort = port
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

// decodeDataplane decodes the Dataplane a proxy presents as the REST API
// decodes a document (resource.DecodeForPath). Proxies send it as JSON:
// a plain JSON object (no duplicate keys, integers as the only numbers)
// is read directly, which gives the object the general YAML reader gives
// and skips its conversion, the largest cost of a connecting proxy.
// Anything else, and every error, takes the general path.
func decodeDataplane(d *resource.Descriptor, data []byte, mesh, name string) (*resource.Resource, error) {
	obj, ok := plainJSONObject(data)
	if ok {
		if k, present := obj["type"]; present && k != d.Kind {
			ok = false
		}
		for key, want := range map[string]string{"name": name, "mesh": mesh} {
			switch v, present := obj[key]; {
			case !present || v == "":
				obj[key] = want
			case v != want:
				ok = false
			}
		}
	}
	if !ok {
		return resource.DecodeForPath(d, data, mesh, name)
	}
	return resource.DecodeObject(d, obj)
}

// plainJSONObject parses data as a JSON object the way resource.ParseObject
// does (numbers as json.Number), refusing what YAML reads differently:
// duplicate keys, numbers other than integers, invalid UTF-8.
func plainJSONObject(data []byte) (map[string]any, bool) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' || !yamlPrintable(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	v, ok := plainJSONValue(dec, 0)
	if !ok {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data
	}
	obj, ok := v.(map[string]any)
	return obj, ok
}

// yamlPrintable reports whether data is valid UTF-8 made only of the
// characters YAML accepts in a document, tabs and carriage returns
// excepted (YAML refuses some tabs JSON allows).
func yamlPrintable(data []byte) bool {
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		data = data[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			return false
		case r == '\n', r >= 0x20 && r <= 0x7e, r == 0x85, r >= 0xa0 && r <= 0xd7ff,
			r >= 0xe000 && r <= 0xfffd && r != 0xfeff, r >= 0x10000:
		default:
			return false
		}
	}
	return true
}

// maxJSONDepth bounds the nesting plainJSONValue follows.
const maxJSONDepth = 64

func plainJSONValue(dec *json.Decoder, depth int) (any, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, false
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				k, err := dec.Token()
				key, isKey := k.(string)
				if err != nil || !isKey {
					return nil, false
				}
				if _, dup := obj[key]; dup {
					return nil, false
				}
				v, ok := plainJSONValue(dec, depth+1)
				if !ok {
					return nil, false
				}
				obj[key] = v
			}
			_, err := dec.Token() // }
			return obj, err == nil
		case '[':
			list := []any{}
			for dec.More() {
				v, ok := plainJSONValue(dec, depth+1)
				if !ok {
					return nil, false
				}
				list = append(list, v)
			}
			_, err := dec.Token() // ]
			return list, err == nil
		}
		return nil, false
	case json.Number:
		if !plainInteger(string(t)) {
			return nil, false
		}
		return t, true
	default: // string, bool, nil
		return t, true
	}
}

// plainInteger reports whether s is an integer YAML reads as JSON does:
// an optional minus, then digits without a leading zero, within int64.
func plainInteger(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 18 || (len(digits) > 1 && digits[0] == '0') {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
