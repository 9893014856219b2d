package kds

import (
	"fmt"
	"maps"
	"strings"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Store-only kinds that travel with the API kinds.
const (
	// DataplaneInsightKind is internal/insights' record kind.
	DataplaneInsightKind = "DataplaneInsight"
	// ZoneIngressInsightKind and ZoneEgressInsightKind hold the connection
	// state of zone proxies (the same shape as DataplaneInsight).
	ZoneIngressInsightKind = "ZoneIngressInsight"
	ZoneEgressInsightKind  = "ZoneEgressInsight"
	zoneIngressKind        = "ZoneIngress"
	zoneEgressKind         = "ZoneEgress"
)

// globalSecretsKept are the prefixes of GlobalSecrets that never leave the
// global control plane: they sign credentials only the global issues.
// The public parts of the zone-token signing keys
// ("zone-token-signing-public-key-<serial>", tokens.ZonePublicKeyPrefix)
// are not kept: zones verify zone proxies' tokens with them.
var globalSecretsKept = []string{"user-token-signing-key-", ZoneSigningKeyPrefix}

// ZoneSigningKeyPrefix starts the GlobalSecrets holding zone-token signing
// keys (internal/tokens names them; repeated here to keep them home).
const ZoneSigningKeyPrefix = "zone-token-signing-key-"

// Flow is one direction of the sync: which kinds travel, in which order,
// how the sender maps its records to the copies the receiver stores, and
// which of the receiver's records are copies it owns.
type Flow struct {
	// Name names the direction in logs ("global-to-zone").
	Name string
	// Kinds travel in this order (meshes before what lives in them).
	Kinds []string
	// Map returns the copy the receiver stores, or false to keep the
	// record home. It must not modify rec.
	Map func(rec *store.Record) (*Resource, bool)
	// Owned reports whether a receiver's record is a copy this flow
	// manages (and may therefore update or delete).
	Owned func(rec *store.Record) bool
	// Check refuses a received resource the sender has no right to write.
	Check func(r *Resource) error
}

// has reports whether the flow carries kind.
func (f *Flow) has(kind string) bool {
	for _, k := range f.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// GlobalToZoneKinds lists, in order, the kinds the global sends to zones.
func GlobalToZoneKinds(reg *resource.Registry) []string {
	out := []string{kinds.Mesh, kinds.GlobalSecret, kinds.Secret, "MeshGateway"}
	for _, d := range reg.All() {
		if d.IsPolicy() {
			out = append(out, d.Kind)
		}
	}
	return append(out, zoneIngressKind, ZoneIngressInsightKind)
}

// ZoneToGlobalKinds lists, in order, the kinds zones send to the global.
func ZoneToGlobalKinds() []string {
	return []string{kinds.Dataplane, DataplaneInsightKind, zoneIngressKind, ZoneIngressInsightKind, zoneEgressKind, ZoneEgressInsightKind}
}

// GlobalToZone is the flow from the global control plane to zone: meshes,
// policies (renamed with Kuma's hash suffix), secrets, gateways, and the
// zone ingresses (with insights) of the other zones.
func GlobalToZone(reg *resource.Registry, zone string) *Flow {
	policies := map[string]bool{}
	for _, d := range reg.All() {
		if d.IsPolicy() {
			policies[d.Kind] = true
		}
	}
	return &Flow{
		Name:  "global-to-zone",
		Kinds: GlobalToZoneKinds(reg),
		Map: func(rec *store.Record) (*Resource, bool) {
			labels := maps.Clone(rec.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			name := rec.Name
			switch {
			case rec.Kind == zoneIngressKind || rec.Kind == ZoneIngressInsightKind:
				// Only other zones' ingresses, which came from their zones.
				if labels[LabelOrigin] != OriginZone || labels[LabelZone] == "" || labels[LabelZone] == zone {
					return nil, false
				}
			case rec.Kind == kinds.GlobalSecret:
				for _, p := range globalSecretsKept {
					if strings.HasPrefix(rec.Name, p) {
						return nil, false
					}
				}
			case policies[rec.Kind]:
				if labels[LabelOrigin] == OriginZone && labels[LabelZone] != "" {
					return nil, false // a zone's own policy stays out of other zones
				}
				name = HashedName(rec.Mesh, rec.Name)
				labels[LabelDisplayName] = rec.Name
				labels[LabelMesh] = rec.Mesh
			}
			labels[LabelOrigin] = OriginGlobal
			return &Resource{Kind: rec.Kind, Name: name, Mesh: rec.Mesh, Labels: labels, Spec: rec.Spec}, true
		},
		Owned: func(rec *store.Record) bool { return rec.Labels[LabelOrigin] == OriginGlobal },
		Check: func(r *Resource) error {
			if r.Labels[LabelOrigin] != OriginGlobal {
				return fmt.Errorf("%s %q: a copy from the global must carry %s=%s", r.Kind, wireName(r.Mesh, r.Name), LabelOrigin, OriginGlobal)
			}
			return nil
		},
	}
}

// ZoneToGlobal is the flow from zone to the global control plane: the
// zone's own dataplanes, zone ingresses and egresses and their insights,
// named "<zone>.<name>" at the global with origin, zone and display-name
// labels.
func ZoneToGlobal(zone string) *Flow {
	prefix := zone + "."
	return &Flow{
		Name:  "zone-to-global",
		Kinds: ZoneToGlobalKinds(),
		Map: func(rec *store.Record) (*Resource, bool) {
			if rec.Labels[LabelOrigin] == OriginGlobal {
				return nil, false // came from the global: not ours to send back
			}
			labels := maps.Clone(rec.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels[LabelOrigin] = OriginZone
			labels[LabelZone] = zone
			labels[LabelDisplayName] = rec.Name
			return &Resource{Kind: rec.Kind, Name: ZoneName(zone, rec.Name), Mesh: rec.Mesh, Labels: labels, Spec: rec.Spec}, true
		},
		Owned: func(rec *store.Record) bool {
			return rec.Labels[LabelOrigin] == OriginZone && rec.Labels[LabelZone] == zone
		},
		Check: func(r *Resource) error {
			if r.Labels[LabelOrigin] != OriginZone || r.Labels[LabelZone] != zone || !strings.HasPrefix(r.Name, prefix) {
				return fmt.Errorf("%s %q: zone %q may only send resources named %s<name> with %s=%s and %s=%s",
					r.Kind, wireName(r.Mesh, r.Name), zone, prefix, LabelOrigin, OriginZone, LabelZone, zone)
			}
			return nil
		},
	}
}
