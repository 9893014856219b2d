package insights

import (
	"context"
	"time"
)

// GlobalInsight is Kuma's GET /global-insight: counts over every mesh.
type GlobalInsight struct {
	Type       string           `json:"type"`
	CreatedAt  string           `json:"createdAt"`
	Meshes     Total            `json:"meshes"`
	Services   GlobalServices   `json:"services"`
	Dataplanes GlobalDataplanes `json:"dataplanes"`
	Policies   Total            `json:"policies"`
	Zones      GlobalZones      `json:"zones"`
	Resources  map[string]Total `json:"resources"`
}

// GlobalServices counts services by type and status.
type GlobalServices struct {
	Total            int           `json:"total"`
	Internal         DataplaneStat `json:"internal"`
	External         Total         `json:"external"`
	GatewayBuiltin   DataplaneStat `json:"gatewayBuiltin"`
	GatewayDelegated DataplaneStat `json:"gatewayDelegated"`
}

// GlobalDataplanes counts proxies by type and status.
type GlobalDataplanes struct {
	Standard         DataplaneStat `json:"standard"`
	GatewayBuiltin   DataplaneStat `json:"gatewayBuiltin"`
	GatewayDelegated DataplaneStat `json:"gatewayDelegated"`
}

// GlobalZones counts zone components; a standalone control plane has none.
type GlobalZones struct {
	ControlPlanes OnlineTotal `json:"controlPlanes"`
	ZoneIngresses OnlineTotal `json:"zoneIngresses"`
	ZoneEgresses  OnlineTotal `json:"zoneEgresses"`
}

// OnlineTotal counts components and the online ones among them.
type OnlineTotal struct {
	Online int `json:"online"`
	Total  int `json:"total"`
}

// GlobalInsight summarizes every mesh.
func (r *Reader) GlobalInsight(ctx context.Context) (*GlobalInsight, error) {
	meshes, err := r.meshes(ctx, "")
	if err != nil {
		return nil, err
	}
	g := &GlobalInsight{
		Type: "GlobalInsight", CreatedAt: time.Now().UTC().Format(time.RFC3339),
		Meshes: Total{len(meshes)}, Resources: map[string]Total{},
	}
	for _, m := range meshes {
		v, err := r.view(ctx, m)
		if err != nil {
			return nil, err
		}
		for _, p := range v.proxies {
			switch p.gateway {
			case "builtin":
				g.Dataplanes.GatewayBuiltin.add(p.status)
			case "delegated":
				g.Dataplanes.GatewayDelegated.add(p.status)
			default:
				g.Dataplanes.Standard.add(p.status)
			}
		}
		mi := r.meshInsight(v)
		for _, s := range mi.byService {
			status := serviceInsight(mi.Name, s).Status
			switch s.gateway {
			case "builtin":
				g.Services.GatewayBuiltin.add(status)
			case "delegated":
				g.Services.GatewayDelegated.add(status)
			default:
				g.Services.Internal.add(status)
			}
		}
		for kind, t := range mi.Resources {
			g.Resources[kind] = Total{g.Resources[kind].Total + t.Total}
		}
		for _, t := range mi.Policies {
			g.Policies.Total += t.Total
		}
	}
	g.Resources["Mesh"] = Total{len(meshes)}
	if err := r.zoneCounts(ctx, &g.Zones); err != nil {
		return nil, err
	}
	g.Services.Total = g.Services.Internal.Total + g.Services.External.Total +
		g.Services.GatewayBuiltin.Total + g.Services.GatewayDelegated.Total
	return g, nil
}
