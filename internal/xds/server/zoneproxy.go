package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tokens"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// Zone proxies (zone ingresses and egresses) are registered and served
// like sidecars, with these differences: they belong to no mesh (their
// proxyKey has the mesh zoneProxyMesh, which no mesh can be named), they
// present a ZoneIngress or ZoneEgress in dataplane.resource, they keep no
// DataplaneInsight, and they are recomputed after every batch of mesh
// recomputes (their config depends on every mesh). The control plane
// keeps a ZoneIngress's availableServices up to date in the store, which
// is how other zones (through the global control plane) and the sidecars
// of this one learn what it serves.

// Kinds of zone proxies.
const (
	kindZoneIngress = "ZoneIngress"
	kindZoneEgress  = "ZoneEgress"
)

// zoneProxyMesh is the mesh of zone proxies' keys.
const zoneProxyMesh = ""

// Proxy types of the bootstrap request and the kinds they present.
const (
	proxyTypeIngress = "ingress"
	proxyTypeEgress  = "egress"
)

// isZoneProxyType reports whether a bootstrap's proxyType is a zone proxy.
func isZoneProxyType(t string) bool { return t == proxyTypeIngress || t == proxyTypeEgress }

func zoneProxyKind(proxyType string) string {
	if proxyType == proxyTypeEgress {
		return kindZoneEgress
	}
	return kindZoneIngress
}

// handleZoneProxyBootstrap answers the bootstrap of a zone proxy: its
// resource is a ZoneIngress or ZoneEgress, and its node id is its name.
func (s *Server) handleZoneProxyBootstrap(w http.ResponseWriter, r *http.Request, req *BootstrapRequest) {
	root := validate.Root()
	var errs validate.Errors
	if reason := validate.Name(req.Name); reason != "" {
		errs.Add(root.Field("name"), reason)
	}
	if req.DataplaneResource == "" {
		errs.Add(root.Field("dataplaneResource"), "must be defined")
	}
	if !errs.Empty() {
		writeStdError(w, http.StatusBadRequest, "the bootstrap request is not valid", asValidate(errs).Violations...)
		return
	}
	d, _ := s.mgr.Registry().ByKind(zoneProxyKind(req.ProxyType))
	res, err := resource.DecodeForPath(d, []byte(req.DataplaneResource), "", req.Name)
	if err != nil {
		var ve *validate.Error
		if errors.As(err, &ve) {
			writeStdError(w, http.StatusBadRequest, "the bootstrap request is not valid", validate.Prefixed(root.Field("dataplaneResource"), ve).Violations...)
			return
		}
		writeStdError(w, http.StatusBadRequest, "dataplaneResource: "+err.Error())
		return
	}
	if err := s.checkZoneProxyToken(r.Context(), req.DataplaneToken, req.ProxyType); err != nil {
		if errors.Is(err, tokens.ErrInvalidZoneToken) {
			s.log.Warn("refusing a zone proxy's bootstrap: zone token", "proxy", req.Name, "proxyType", req.ProxyType, "remote", r.RemoteAddr, "reason", err.Error())
			writeStdError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if errors.Is(err, tokens.ErrNoZoneKeys) {
			s.log.Warn("zone proxy bootstrap: no zone-token key yet", "proxy", req.Name)
			writeStdError(w, http.StatusServiceUnavailable, err.Error()) // the proxy retries
			return
		}
		s.log.Error("checking a zone token", "proxy", req.Name, "err", err)
		writeStdError(w, http.StatusInternalServerError, "checking the zone token failed; see the control plane's log")
		return
	}
	b, err := s.bootstrapFor(req, res)
	if err != nil {
		s.log.Error("building a bootstrap", "name", req.Name, "proxyType", req.ProxyType, "err", err)
		writeStdError(w, http.StatusInternalServerError, "building the bootstrap failed; see the control plane's log")
		return
	}
	b.Node.Id, b.Node.Cluster = req.Name, req.Name
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		writeStdError(w, http.StatusInternalServerError, "encoding the bootstrap failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(js)
}

// identifyZoneProxy reads a node whose dataplane.resource is a ZoneIngress
// or ZoneEgress (kind), or returns false.
func (s *Server) identifyZoneProxy(node *corev3.Node) (*nodeInfo, bool, error) {
	raw := node.GetMetadata().GetFields()[MetaDataplane].GetStringValue()
	var head struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &head) != nil || (head.Type != kindZoneIngress && head.Type != kindZoneEgress) {
		return nil, false, nil
	}
	name := head.Name
	if name == "" {
		name = node.GetId()
	}
	d, _ := s.mgr.Registry().ByKind(head.Type)
	res, err := resource.DecodeForPath(d, []byte(raw), "", name)
	if err != nil {
		return nil, true, fmt.Errorf("node %q: invalid %s: %w", node.GetId(), head.Type, err)
	}
	info := &nodeInfo{
		key: proxyKey{Mesh: zoneProxyMesh, Name: name}, nodeID: node.GetId(),
		version: node.GetMetadata().GetFields()[MetaVersion].GetStringValue(), dataplane: res, zoneProxy: head.Type,
	}
	return info, true, nil
}

// checkZoneProxyToken checks the zone token a zone proxy of proxyType
// ("ingress", "egress") presented, when tokens are required: its scope
// must hold proxyType and, on a zone control plane, its zone must be this
// one's; it is verified with a local signing key (global, standalone) or a
// public key synced from the global (zone). Sidecars never come here: they
// present dataplane tokens.
func (s *Server) checkZoneProxyToken(ctx context.Context, token, proxyType string) error {
	if !s.authnRequired() {
		return nil
	}
	_, err := s.zoneTokens.ValidateZoneProxyToken(ctx, token, s.cfg.Zone, proxyType)
	return err
}

// authenticateZoneProxy checks a zone proxy's stream token
// (checkZoneProxyToken): a refusal is Unauthenticated naming the reason, a
// store failure Unavailable.
func (s *Server) authenticateZoneProxy(ctx context.Context, token string, info *nodeInfo) error {
	proxyType := proxyTypeIngress
	if info.zoneProxy == kindZoneEgress {
		proxyType = proxyTypeEgress
	}
	err := s.checkZoneProxyToken(ctx, token, proxyType)
	if err == nil {
		return nil
	}
	if errors.Is(err, tokens.ErrInvalidZoneToken) {
		s.log.Warn("refusing a zone proxy: zone token", "proxy", info.key.Name, "node", info.nodeID, "kind", info.zoneProxy, "reason", err.Error())
		return status.Error(codes.Unauthenticated, fmt.Sprintf("zone proxy %s (%s): %v", info.key.Name, info.zoneProxy, err))
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("zone proxy %s: checking its zone token: %v", info.key.Name, err))
}

// registerZoneProxy stores a connecting zone proxy's resource, keeping the
// availableServices the control plane computed (the proxy does not know
// them).
func (s *Server) registerZoneProxy(ctx context.Context, info *nodeInfo) error {
	res := info.dataplane
	if zi, ok := res.Spec.(*mesh.ZoneIngress); ok {
		ixs, err := s.recon.zoneIndexes(ctx)
		if err != nil {
			return err
		}
		zi.AvailableServices = proxymodel.AvailableServices(s.ingressZone(res.Meta.Labels, zi), ixs)
	}
	if _, err := s.mgr.Apply(ctx, res); err != nil {
		return fmt.Errorf("registering %s %s: %w", info.zoneProxy, info.key.Name, err)
	}
	return nil
}

// ingressZone is the zone a ZoneIngress serves: its kuma.io/zone label
// (set on copies synced from other zones), else its zone field, else this
// control plane's zone (none when standalone).
func (s *Server) ingressZone(labels map[string]string, zi *mesh.ZoneIngress) string {
	if z := labels[mesh.ZoneTag]; z != "" {
		return z
	}
	if zi != nil && zi.Zone != "" {
		return zi.Zone
	}
	return s.cfg.Zone
}

// loadZoneIngresses lists the zone ingresses known here, for the
// cross-zone endpoints of a mesh snapshot.
func (s *Server) loadZoneIngresses(ctx context.Context) ([]proxymodel.ZoneIngressInfo, error) {
	d, _ := s.mgr.Registry().ByKind(kindZoneIngress)
	list, _, err := s.mgr.List(ctx, d, manager.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing zone ingresses: %w", err)
	}
	out := make([]proxymodel.ZoneIngressInfo, 0, len(list))
	for _, res := range list {
		zi := res.Spec.(*mesh.ZoneIngress)
		info := proxymodel.ZoneIngressInfo{Name: res.Meta.Name, Zone: s.ingressZone(res.Meta.Labels, zi), AvailableServices: zi.AvailableServices}
		if n := zi.Networking; n != nil {
			info.AdvertisedAddress, info.AdvertisedPort = n.AdvertisedAddress, n.AdvertisedPort
		}
		out = append(out, info)
	}
	return out, nil
}

// loadZoneEgresses lists the zone egresses known here.
func (s *Server) loadZoneEgresses(ctx context.Context) ([]proxymodel.ZoneEgressInfo, error) {
	d, _ := s.mgr.Registry().ByKind(kindZoneEgress)
	list, _, err := s.mgr.List(ctx, d, manager.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing zone egresses: %w", err)
	}
	out := make([]proxymodel.ZoneEgressInfo, 0, len(list))
	for _, res := range list {
		ze := res.Spec.(*mesh.ZoneEgress)
		info := proxymodel.ZoneEgressInfo{Name: res.Meta.Name, Zone: s.egressZone(res.Meta.Labels, ze)}
		if n := ze.Networking; n != nil {
			info.Address, info.Port = n.Address, n.Port
		}
		out = append(out, info)
	}
	return out, nil
}

// egressZone is the zone a ZoneEgress serves, as ingressZone.
func (s *Server) egressZone(labels map[string]string, ze *mesh.ZoneEgress) string {
	if z := labels[mesh.ZoneTag]; z != "" {
		return z
	}
	if ze != nil && ze.Zone != "" {
		return ze.Zone
	}
	return s.cfg.Zone
}

// fillZones adds the zone proxies and this control plane's zone to a
// mesh snapshot (an error leaves the mesh without cross-zone endpoints).
func (s *Server) fillZones(ctx context.Context, snap *proxymodel.MeshSnapshot) {
	snap.LocalZone = s.cfg.Zone
	zis, err := s.loadZoneIngresses(ctx)
	if err != nil {
		s.log.Warn("cross-zone endpoints skipped", "mesh", snap.Mesh, "err", err)
		return
	}
	zes, err := s.loadZoneEgresses(ctx)
	if err != nil {
		s.log.Warn("zone egresses skipped", "mesh", snap.Mesh, "err", err)
	}
	snap.ZoneIngresses, snap.ZoneEgresses = zis, zes
}

// isZoneProxyKind reports whether a store event is about a zone proxy,
// which changes the cross-zone endpoints of every mesh.
func isZoneProxyKind(kind string) bool { return kind == kindZoneIngress || kind == kindZoneEgress }

// zoneIndexes indexes every mesh (for zone proxies, which serve all).
func (r *reconciler) zoneIndexes(ctx context.Context) ([]*proxymodel.Index, error) {
	meshes, _, err := r.s.mgr.List(ctx, r.s.meshDesc(), manager.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing meshes: %w", err)
	}
	out := make([]*proxymodel.Index, 0, len(meshes))
	for _, m := range meshes {
		ix, _, err := loadIndex(ctx, r.s.mgr, nil, m.Meta.Name)
		if err != nil {
			return nil, err
		}
		r.s.addZones(ctx, ix)
		out = append(out, ix)
	}
	return out, nil
}

// connectedMeshes returns the meshes with proxies connected here, zone
// proxies' included (a zone proxy change concerns all of them).
func (r *reconciler) connectedMeshes() []string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	set := map[string]bool{}
	for k := range r.s.proxies {
		set[k.Mesh] = true
	}
	return sortedKeys(set)
}

// recomputeZoneProxies builds and pushes the config of the zone proxies
// connected here and refreshes the availableServices of their ingresses.
func (r *reconciler) recomputeZoneProxies(ctx context.Context) error {
	proxies := r.connectedIn(zoneProxyMesh)
	if len(proxies) == 0 {
		return nil
	}
	ixs, err := r.zoneIndexes(ctx)
	if err != nil {
		return err
	}
	for _, ps := range proxies {
		if err := r.pushZoneProxy(ctx, ixs, ps); err != nil && ctx.Err() == nil {
			r.s.log.Warn("building a zone proxy's config", "proxy", ps.info().key.Name, "err", err)
		}
	}
	return nil
}

func (r *reconciler) pushZoneProxy(ctx context.Context, ixs []*proxymodel.Index, ps *proxyState) error {
	info := ps.info()
	var res *build.Resources
	var err error
	switch spec := info.dataplane.Spec.(type) {
	case *mesh.ZoneIngress:
		zone := r.s.ingressZone(info.dataplane.Meta.Labels, spec)
		if err := r.updateAvailableServices(ctx, info.key.Name, zone, ixs); err != nil {
			r.s.log.Warn("updating a zone ingress's available services", "proxy", info.key.Name, "err", err)
		}
		res, err = build.ZoneIngress(proxymodel.BuildZoneIngress(info.key.Name, zone, spec, ixs))
	case *mesh.ZoneEgress:
		zone := r.s.egressZone(info.dataplane.Meta.Labels, spec)
		res, err = build.ZoneIngress(proxymodel.BuildZoneEgress(info.key.Name, zone, spec, ixs))
	default:
		res = &build.Resources{}
	}
	if err != nil {
		return err
	}
	out, err := newOutput(res)
	if err != nil {
		return err
	}
	versions := out.versions()
	r.s.mu.Lock()
	same := equalVersions(ps.versions, versions)
	if !same {
		ps.versions = versions
	}
	r.s.mu.Unlock()
	ps.pushed = out
	if same {
		return nil
	}
	if err := r.s.cache.SetSnapshot(ctx, info.nodeID, newResourceSnapshot(out, versions)); err != nil {
		return fmt.Errorf("setting the snapshot of %s: %w", info.key.Name, err)
	}
	r.s.mu.Lock()
	gone := r.s.byNodeID[info.nodeID] == nil
	r.s.mu.Unlock()
	if gone {
		r.s.cache.ClearSnapshot(info.nodeID)
	}
	r.s.log.Debug("pushed config", "zoneProxy", info.key.Name, "versions", versions)
	return nil
}

// updateAvailableServices writes a ZoneIngress's availableServices when
// they changed.
func (r *reconciler) updateAvailableServices(ctx context.Context, name, zone string, ixs []*proxymodel.Index) error {
	d, _ := r.s.mgr.Registry().ByKind(kindZoneIngress)
	cur, err := r.s.mgr.Get(ctx, d, "", name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	zi := cur.Spec.(*mesh.ZoneIngress)
	want := proxymodel.AvailableServices(zone, ixs)
	if reflect.DeepEqual(zi.AvailableServices, want) || (len(zi.AvailableServices) == 0 && len(want) == 0) {
		return nil
	}
	zi.AvailableServices = want
	_, err = r.s.mgr.Apply(ctx, cur)
	return err
}

// newMeshCacheWithZones is the reconciler's mesh cache, whose snapshots
// carry the zone ingresses.
func newMeshCacheWithZones(s *Server) *meshCache {
	c := newMeshCache(s.mgr)
	c.zones = s.fillZones
	return c
}

// addZones gives a freshly loaded index the zone proxies and this control
// plane's zone, as the reconciler's snapshots have them.
func (s *Server) addZones(ctx context.Context, ix *proxymodel.Index) {
	var zones proxymodel.MeshSnapshot
	s.fillZones(ctx, &zones)
	ix.SetLocalZone(zones.LocalZone)
	ix.SetZoneProxies(zones.ZoneIngresses, zones.ZoneEgresses)
}

// scheduleZoneProxyRemoval deletes a zone proxy's resource when its proxy
// has not come back within the deregistration delay, as Kuma unregisters
// the zone proxies it registered: other zones then stop sending traffic
// to an ingress that is gone. Only a single control plane instance per
// store does it (with several, the proxy may be connected to another).
func (s *Server) scheduleZoneProxyRemoval(info *nodeInfo) {
	if !s.cfg.SingleInstance {
		return
	}
	time.AfterFunc(s.cfg.DeregistrationDelay, func() {
		s.mu.Lock()
		_, back := s.proxies[info.key]
		s.mu.Unlock()
		if back {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, _ := s.mgr.Registry().ByKind(info.zoneProxy)
		if err := s.mgr.Delete(ctx, d, "", info.key.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("deregistering a zone proxy", "proxy", info.key.Name, "kind", info.zoneProxy, "err", err)
			return
		}
		s.log.Info("deregistered a zone proxy that left", "proxy", info.key.Name, "kind", info.zoneProxy)
	})
}
