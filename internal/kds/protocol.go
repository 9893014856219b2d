// Package kds is the Kuma Discovery Service: the sync between a global
// control plane and its zones. It follows Kuma's KDS v2 design: one gRPC
// service with two long-lived bidirectional streams per zone, both carrying
// Envoy's delta discovery messages (go-control-plane's
// DeltaDiscoveryRequest/Response), one type URL per resource kind.
//
//   - GlobalToZoneSync: the zone sends requests (subscriptions with the
//     versions it already holds, then ACK/NACK), the global answers with
//     responses (resources that changed, names removed).
//   - ZoneToGlobalSync: the same with the roles swapped: the global sends
//     requests and the zone answers with responses.
//
// A Sender serves responses from its store; a Receiver applies them to its
// own store. Resource versions are hashes of content, computed the same
// way on both sides, so a receiver that restarts (or reconnects after a
// partition) tells the sender exactly what it holds and gets only the
// difference, deletes included.
package kds

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Labels synced copies carry, as Kuma names them.
const (
	// LabelOrigin is "global" on a copy synced from the global control
	// plane and "zone" on a resource that comes from a zone.
	LabelOrigin = "kuma.io/origin"
	// LabelZone names the zone a zone resource comes from.
	LabelZone = "kuma.io/zone"
	// LabelDisplayName is the name the resource has where it was created,
	// when the synced copy's name differs.
	LabelDisplayName = "kuma.io/display-name"
	// LabelMesh is the mesh of a policy (Kuma sets it on every policy).
	LabelMesh = "kuma.io/mesh"
)

// Origins.
const (
	OriginGlobal = "global"
	OriginZone   = "zone"
)

// typeURLPrefix starts every KDS type URL; the kind follows.
const typeURLPrefix = "type.trellis.io/kds/"

// wireTypeURL is the Any type URL of an encoded resource.
const wireTypeURL = "type.trellis.io/kds.Resource"

// TypeURL returns the KDS type URL of a kind.
func TypeURL(kind string) string { return typeURLPrefix + kind }

// KindOf returns the kind of a KDS type URL, or false.
func KindOf(typeURL string) (string, bool) {
	k, ok := strings.CutPrefix(typeURL, typeURLPrefix)
	return k, ok && k != ""
}

// Resource is a resource as it travels: the JSON inside each
// DeltaDiscoveryResponse's Any. Name, mesh and labels are the ones the
// receiver stores (the sender maps them); Spec is the store's canonical
// JSON.
type Resource struct {
	Kind    string            `json:"type"`
	Name    string            `json:"name"`
	Mesh    string            `json:"mesh,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Spec    json.RawMessage   `json:"spec"`
	Version string            `json:"version"`
}

// Key returns the store key the resource is kept under.
func (r *Resource) Key() store.Key { return store.Key{Kind: r.Kind, Mesh: r.Mesh, Name: r.Name} }

// wireName is the delta protocol's resource name: mesh-scoped resources
// are "mesh/name" (a name cannot hold a slash), others "name".
func wireName(mesh, name string) string {
	if mesh == "" {
		return name
	}
	return mesh + "/" + name
}

// splitWireName reverses wireName.
func splitWireName(n string) (mesh, name string) {
	if m, rest, ok := strings.Cut(n, "/"); ok {
		return m, rest
	}
	return "", n
}

// fromRecord builds the wire resource of a stored record with its
// content version.
func fromRecord(rec *store.Record) (*Resource, error) {
	r := &Resource{Kind: rec.Kind, Name: rec.Name, Mesh: rec.Mesh, Labels: maps.Clone(rec.Labels), Spec: rec.Spec}
	v, err := contentVersion(r)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", rec.Kind, wireName(rec.Mesh, rec.Name), err)
	}
	r.Version = v
	return r, nil
}

// contentVersion hashes what the receiver stores (kind, mesh, name,
// labels, spec) in a canonical form, so the sender and the receiver compute
// the same version from their own copies.
func contentVersion(r *Resource) (string, error) {
	spec, err := canonicalJSON(r.Spec)
	if err != nil {
		return "", fmt.Errorf("spec: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", r.Kind, r.Mesh, r.Name)
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		fmt.Fprintf(h, "%s=%s\x00", k, r.Labels[k])
	}
	h.Write(spec)
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// canonicalJSON re-encodes JSON with sorted keys and no spaces; numbers
// keep their text.
func canonicalJSON(b []byte) ([]byte, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte("null"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// encode wraps a resource in an Any.
func encode(r *Resource) (*anypb.Any, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: wireTypeURL, Value: b}, nil
}

// decode reads a resource from an Any and checks it is of kind.
func decode(a *anypb.Any, kind string) (*Resource, error) {
	if a == nil {
		return nil, fmt.Errorf("empty resource")
	}
	if a.TypeUrl != wireTypeURL {
		return nil, fmt.Errorf("resource type URL %q: want %q", a.TypeUrl, wireTypeURL)
	}
	var r Resource
	if err := json.Unmarshal(a.Value, &r); err != nil {
		return nil, fmt.Errorf("decoding the resource: %w", err)
	}
	if r.Kind != kind {
		return nil, fmt.Errorf("resource %q is a %s, the stream type is %s", r.Name, r.Kind, kind)
	}
	if r.Name == "" {
		return nil, fmt.Errorf("a %s resource has no name", kind)
	}
	return &r, nil
}

// safeAlphabet is the alphabet of Kuma's hash suffixes (Kubernetes'
// rand.SafeEncodeString: no vowels, no look-alike characters).
const safeAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// maxNameLength is the longest name a hashed name keeps before its suffix
// (Kubernetes' 253 minus a dash and 16 characters).
const maxNameLength = 253 - 17

// HashedName is the name a global policy gets in a zone, following Kuma:
// the name, truncated, then "-" and 16 characters of the FNV-64a hash of
// mesh and name, encoded in Kubernetes' safe alphabet
// ("my-policy" → "my-policy-fvdw2c2wx44fv4xz").
func HashedName(mesh, name string) string {
	h := fnv.New64a()
	h.Write([]byte(mesh))
	h.Write([]byte(name))
	hx := []byte(hex.EncodeToString(h.Sum(nil)))
	for i, c := range hx {
		hx[i] = safeAlphabet[int(c)%len(safeAlphabet)]
	}
	short := name
	if len(short) > maxNameLength {
		short = short[:maxNameLength]
	}
	return short + "-" + string(hx)
}

// ZoneName is the name a zone resource gets at the global: "<zone>.<name>",
// as Kuma names zone resources synced from Universal zones.
func ZoneName(zone, name string) string { return zone + "." + name }
