package insights

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// Kinds the zone summaries read.
const (
	zoneKind        = "Zone"
	zoneIngressKind = "ZoneIngress"
	zoneEgressKind  = "ZoneEgress"
)

// ZoneOverview is Kuma's ZoneOverview: a Zone with its ZoneInsight.
type ZoneOverview struct {
	Type             string            `json:"type"`
	Name             string            `json:"name"`
	CreationTime     string            `json:"creationTime"`
	ModificationTime string            `json:"modificationTime"`
	Labels           map[string]string `json:"labels,omitempty"`
	Zone             ZoneSpec          `json:"zone"`
	ZoneInsight      *ZoneInsight      `json:"zoneInsight"`
}

// ZoneSpec is the Zone's spec as an overview shows it (enabled resolved).
type ZoneSpec struct {
	Enabled bool `json:"enabled"`
}

// ZoneProxyOverview is Kuma's ZoneIngressOverview / ZoneEgressOverview: the
// proxy's resource and its insight (the DataplaneInsight the xDS server
// keeps for it, stored with an empty mesh).
type ZoneProxyOverview struct {
	Type             string            `json:"type"`
	Name             string            `json:"name"`
	CreationTime     string            `json:"creationTime"`
	ModificationTime string            `json:"modificationTime"`
	Labels           map[string]string `json:"labels,omitempty"`
	// Spec and Insight are marshalled under kind-specific keys
	// (zoneIngress/zoneIngressInsight, zoneEgress/zoneEgressInsight).
	Spec    json.RawMessage   `json:"-"`
	Insight *DataplaneInsight `json:"-"`
	specKey string
}

// MarshalJSON writes the kind-specific keys Kuma uses.
func (o ZoneProxyOverview) MarshalJSON() ([]byte, error) {
	m := map[string]any{
		"type": o.Type, "name": o.Name, "creationTime": o.CreationTime, "modificationTime": o.ModificationTime,
		o.specKey: o.Spec, o.specKey + "Insight": o.Insight,
	}
	if len(o.Labels) > 0 {
		m["labels"] = o.Labels
	}
	return json.Marshal(m)
}

// ZoneOverviews returns the overview of every zone (sorted by name) or of
// the one named (store.ErrNotFound when it does not exist).
func (r *Reader) ZoneOverviews(ctx context.Context, name string) ([]ZoneOverview, error) {
	zones, err := r.all(ctx, zoneKind, name)
	if err != nil {
		return nil, err
	}
	ins, err := ListZones(ctx, r.st)
	if err != nil {
		return nil, fmt.Errorf("listing the zone insights: %w", err)
	}
	out := make([]ZoneOverview, 0, len(zones))
	for _, z := range zones {
		spec, _ := z.Spec.(*system.Zone)
		in := ins[z.Meta.Name]
		if in == nil {
			in = &ZoneInsight{}
		}
		out = append(out, ZoneOverview{
			Type: "ZoneOverview", Name: z.Meta.Name,
			CreationTime: formatTime(z.Meta.CreationTime), ModificationTime: formatTime(z.Meta.ModificationTime),
			Labels: nonEmpty(z.Meta.Labels), Zone: ZoneSpec{Enabled: spec.IsEnabled()}, ZoneInsight: in,
		})
	}
	return out, nil
}

// ZoneIngressOverviews returns ZoneIngressOverviews (egress false) or
// ZoneEgressOverviews (egress true), sorted by name; one when name is set.
func (r *Reader) ZoneIngressOverviews(ctx context.Context, egress bool, name string) ([]ZoneProxyOverview, error) {
	kind, typ, key := zoneIngressKind, "ZoneIngressOverview", "zoneIngress"
	if egress {
		kind, typ, key = zoneEgressKind, "ZoneEgressOverview", "zoneEgress"
	}
	items, err := r.all(ctx, kind, name)
	if err != nil {
		return nil, err
	}
	out := make([]ZoneProxyOverview, 0, len(items))
	for _, it := range items {
		spec, err := resource.MarshalSpec(it.Spec)
		if err != nil {
			return nil, fmt.Errorf("encoding %s %s: %w", kind, it.Meta.Name, err)
		}
		in, err := Get(ctx, r.st, "", it.Meta.Name)
		if err != nil {
			return nil, fmt.Errorf("reading the insight of %s %s: %w", kind, it.Meta.Name, err)
		}
		out = append(out, ZoneProxyOverview{
			Type: typ, Name: it.Meta.Name,
			CreationTime: formatTime(it.Meta.CreationTime), ModificationTime: formatTime(it.Meta.ModificationTime),
			Labels: nonEmpty(it.Meta.Labels), Spec: spec, Insight: in, specKey: key,
		})
	}
	return out, nil
}

// all lists every resource of a global-scoped kind sorted by name, or the
// one named.
func (r *Reader) all(ctx context.Context, kind, name string) ([]*resource.Resource, error) {
	d, err := r.desc(kind)
	if err != nil {
		return nil, err
	}
	if name != "" {
		res, err := r.mgr.Get(ctx, d, "", name)
		if err != nil {
			return nil, err
		}
		return []*resource.Resource{res}, nil
	}
	items, _, err := r.mgr.List(ctx, d, manager.ListOptions{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b *resource.Resource) int { return compareStrings(a.Meta.Name, b.Meta.Name) })
	return items, nil
}

// zoneCounts fills the zones section of the global insight.
func (r *Reader) zoneCounts(ctx context.Context, g *GlobalZones) error {
	zones, err := r.ZoneOverviews(ctx, "")
	if err != nil {
		return err
	}
	for _, z := range zones {
		g.ControlPlanes.Total++
		if z.ZoneInsight.Online() {
			g.ControlPlanes.Online++
		}
	}
	for _, egress := range []bool{false, true} {
		items, err := r.ZoneIngressOverviews(ctx, egress, "")
		if err != nil {
			return err
		}
		t := &g.ZoneIngresses
		if egress {
			t = &g.ZoneEgresses
		}
		for _, it := range items {
			t.Total++
			if it.Insight.Online() {
				t.Online++
			}
		}
	}
	return nil
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
