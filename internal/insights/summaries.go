package insights

import (
	"context"
	"slices"
	"time"
)

// DataplaneStat counts proxies by status (Kuma's MeshInsight.DataplaneStat).
type DataplaneStat struct {
	Total             int `json:"total"`
	Online            int `json:"online"`
	Offline           int `json:"offline"`
	PartiallyDegraded int `json:"partiallyDegraded"`
}

func (s *DataplaneStat) add(status string) {
	s.Total++
	switch status {
	case StatusOnline:
		s.Online++
	case StatusPartiallyDegraded:
		s.PartiallyDegraded++
	default:
		s.Offline++
	}
}

// Total is a bare count.
type Total struct {
	Total int `json:"total"`
}

// MeshInsight is Kuma's MeshInsight as GET /mesh-insights serves it.
type MeshInsight struct {
	Type             string                   `json:"type"`
	Name             string                   `json:"name"`
	CreationTime     string                   `json:"creationTime"`
	ModificationTime string                   `json:"modificationTime"`
	Dataplanes       DataplaneStat            `json:"dataplanes"`
	DataplanesByType DataplanesByType         `json:"dataplanesByType"`
	Policies         map[string]Total         `json:"policies"`
	DPVersions       DPVersions               `json:"dpVersions"`
	MTLS             MeshMTLS                 `json:"mTLS"`
	Services         ServiceStat              `json:"services"`
	Resources        map[string]Total         `json:"resources"`
	byService        map[string]*serviceStats `json:"-"`
}

// DataplanesByType splits a mesh's proxies into sidecars and gateways.
type DataplanesByType struct {
	Standard DataplaneStat `json:"standard"`
	Gateway  DataplaneStat `json:"gateway"`
}

// DPVersions counts proxies by data-plane version. trellis-dp versions
// go under kumaDp, where Kuma's GUI looks; envoy stays empty.
type DPVersions struct {
	KumaDp map[string]DataplaneStat `json:"kumaDp"`
	Envoy  map[string]DataplaneStat `json:"envoy"`
}

// MeshMTLS counts proxies by the backend that issued their certificate
// and by the backends they trust.
type MeshMTLS struct {
	IssuedBackends    map[string]DataplaneStat `json:"issuedBackends"`
	SupportedBackends map[string]DataplaneStat `json:"supportedBackends"`
}

// ServiceStat counts a mesh's services.
type ServiceStat struct {
	Total    int `json:"total"`
	Internal int `json:"internal"`
	External int `json:"external"`
}

// serviceStats accumulates one service while summarizing.
type serviceStats struct {
	name           string
	gateway        string
	dataplanes     DataplaneStat
	issuedBackends map[string]int
	created        time.Time
	updated        time.Time
}

// MeshInsights summarizes every mesh, sorted by name; one when name is not
// empty (store.ErrNotFound when it does not exist).
func (r *Reader) MeshInsights(ctx context.Context, name string) ([]*MeshInsight, error) {
	meshes, err := r.meshes(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]*MeshInsight, 0, len(meshes))
	for _, m := range meshes {
		v, err := r.view(ctx, m)
		if err != nil {
			return nil, err
		}
		out = append(out, r.meshInsight(v))
	}
	return out, nil
}

func (r *Reader) meshInsight(v *meshView) *MeshInsight {
	mi := &MeshInsight{
		Type: "MeshInsight", Name: v.res.Meta.Name,
		CreationTime: formatTime(v.res.Meta.CreationTime), ModificationTime: formatTime(v.res.Meta.ModificationTime),
		Policies: map[string]Total{}, Resources: map[string]Total{},
		DPVersions: DPVersions{KumaDp: map[string]DataplaneStat{}, Envoy: map[string]DataplaneStat{}},
		MTLS:       MeshMTLS{IssuedBackends: map[string]DataplaneStat{}, SupportedBackends: map[string]DataplaneStat{}},
		byService:  map[string]*serviceStats{},
	}
	for _, p := range v.proxies {
		mi.Dataplanes.add(p.status)
		if p.gateway == "" {
			mi.DataplanesByType.Standard.add(p.status)
		} else {
			mi.DataplanesByType.Gateway.add(p.status)
		}
		if p.version != "" {
			addTo(mi.DPVersions.KumaDp, p.version, p.status)
		}
		if p.mtls != nil {
			if p.mtls.IssuedBackend != "" {
				addTo(mi.MTLS.IssuedBackends, p.mtls.IssuedBackend, p.status)
			}
			for _, b := range p.mtls.SupportedBackends {
				addTo(mi.MTLS.SupportedBackends, b, p.status)
			}
		}
		for _, svc := range p.services {
			s := mi.byService[svc]
			if s == nil {
				s = &serviceStats{name: svc, gateway: p.gateway, issuedBackends: map[string]int{}, created: p.created, updated: p.updated}
				mi.byService[svc] = s
			}
			s.dataplanes.add(p.status)
			if p.mtls != nil && p.mtls.IssuedBackend != "" {
				s.issuedBackends[p.mtls.IssuedBackend]++
			}
			if p.created.Before(s.created) {
				s.created = p.created
			}
			if p.updated.After(s.updated) {
				s.updated = p.updated
			}
		}
	}
	for _, s := range mi.byService {
		if s.gateway == "" {
			mi.Services.Internal++
		}
	}
	mi.Services.Total = mi.Services.Internal + mi.Services.External
	for kind, n := range v.counts {
		mi.Resources[kind] = Total{n}
		if d, ok := r.mgr.Registry().ByKind(kind); ok && d.IsPolicy() {
			mi.Policies[kind] = Total{n}
		}
	}
	return mi
}

func addTo(m map[string]DataplaneStat, key, status string) {
	s := m[key]
	s.add(status)
	m[key] = s
}

// ServiceInsight is one service of a mesh as Kuma's
// GET /meshes/{mesh}/service-insights serves it.
type ServiceInsight struct {
	Type             string         `json:"type"`
	Mesh             string         `json:"mesh"`
	Name             string         `json:"name"`
	CreationTime     string         `json:"creationTime"`
	ModificationTime string         `json:"modificationTime"`
	ServiceType      string         `json:"serviceType"`
	Status           string         `json:"status"`
	Dataplanes       ServiceProxies `json:"dataplanes"`
	IssuedBackends   map[string]int `json:"issuedBackends"`
}

// ServiceProxies counts a service's proxies.
type ServiceProxies struct {
	Total   int `json:"total"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

// ServiceInsights lists the services of a mesh (store.ErrNotFound when the
// mesh does not exist), sorted by name.
func (r *Reader) ServiceInsights(ctx context.Context, meshName string) ([]*ServiceInsight, error) {
	mis, err := r.MeshInsights(ctx, meshName)
	if err != nil {
		return nil, err
	}
	mi := mis[0]
	out := make([]*ServiceInsight, 0, len(mi.byService))
	for _, s := range mi.byService {
		out = append(out, serviceInsight(meshName, s))
	}
	slices.SortFunc(out, func(a, b *ServiceInsight) int { return compareStrings(a.Name, b.Name) })
	return out, nil
}

func serviceInsight(meshName string, s *serviceStats) *ServiceInsight {
	online := s.dataplanes.Online + s.dataplanes.PartiallyDegraded
	si := &ServiceInsight{
		Type: "ServiceInsight", Mesh: meshName, Name: s.name,
		CreationTime: formatTime(s.created), ModificationTime: formatTime(s.updated),
		ServiceType: serviceType(s.gateway), IssuedBackends: s.issuedBackends,
		Dataplanes: ServiceProxies{Total: s.dataplanes.Total, Online: online, Offline: s.dataplanes.Offline},
	}
	switch {
	case s.dataplanes.Total > 0 && s.dataplanes.Online == s.dataplanes.Total:
		si.Status = StatusOnline
	case online == 0:
		si.Status = StatusOffline
	default:
		si.Status = StatusPartiallyDegraded
	}
	return si
}

// serviceType is Kuma's serviceType of a service: internal, or the type of
// gateway its proxies are.
func serviceType(gateway string) string {
	switch gateway {
	case "builtin":
		return "gateway_builtin"
	case "delegated":
		return "gateway_delegated"
	}
	return "internal"
}
