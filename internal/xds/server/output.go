package server

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// xdsTypes are the type URLs of a proxy's snapshot, every one always
// present (an empty type still has a version).
var xdsTypes = [...]string{listenerType, routeType, clusterType, endpointType, secretType}

// item is one built resource: its name, its deterministic encoding
// (wrapped, see encoded) and the hash of that encoding.
type item struct {
	name string
	res  types.Resource
	hash string
}

// encoded returns a message whose encoding is exactly b: an empty message
// carrying b as unknown fields, which proto marshalling writes back as
// they are. The snapshot cache marshals each resource for every response
// it sends; handing it encoded resources makes that a copy, so a resource
// shared by many proxies is encoded once, and the built message can be
// dropped (the encoding is several times smaller).
func encoded(b []byte) types.Resource {
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
	return m
}

// output is a proxy's resources (or a part of them) by type, in the order
// of xdsTypes, each list sorted by name. Outputs are immutable once built
// and shared: between proxies, and between pushes of one proxy.
type output [len(xdsTypes)][]item

var deterministic = proto.MarshalOptions{Deterministic: true}

// newOutput hashes built resources, each encoded once.
func newOutput(r *build.Resources) (*output, error) {
	byType := r.ByType()
	var out output
	for i, t := range xdsTypes {
		list := make([]item, 0, len(byType[t]))
		for _, res := range byType[t] {
			b, err := deterministic.Marshal(res)
			if err != nil {
				return nil, err
			}
			list = append(list, newItem(cachev3.GetResourceName(res), b))
		}
		sortItems(list)
		out[i] = list
	}
	return &out, nil
}

// newItem is a resource named name whose encoding is b.
func newItem(name string, b []byte) item {
	sum := sha256.Sum256(b)
	return item{name: name, res: encoded(b), hash: hex.EncodeToString(sum[:12])}
}

// raw returns the item's encoding.
func (it item) raw() []byte {
	return it.res.ProtoReflect().GetUnknown()
}

func sortItems(list []item) {
	slices.SortStableFunc(list, func(a, b item) int { return strings.Compare(a.name, b.name) })
}

// merge combines the outputs of two parts of one proxy. A name both parts
// emit (the proxy's secrets) must carry identical content; otherwise it
// reports false and the caller builds the proxy whole.
func merge(a, b *output) (*output, bool) {
	var out output
	for i := range out {
		x, y := a[i], b[i]
		list := make([]item, 0, len(x)+len(y))
		for len(x) > 0 || len(y) > 0 {
			switch {
			case len(y) == 0 || (len(x) > 0 && x[0].name < y[0].name):
				list, x = append(list, x[0]), x[1:]
			case len(x) == 0 || y[0].name < x[0].name:
				list, y = append(list, y[0]), y[1:]
			default:
				if x[0].hash != y[0].hash {
					return nil, false
				}
				list, x, y = append(list, x[0]), x[1:], y[1:]
			}
		}
		out[i] = list
	}
	return &out, true
}

// versions returns each type's version: a hash of its resources' names
// and hashes.
func (o *output) versions() map[string]string {
	out := make(map[string]string, len(xdsTypes))
	for i, t := range xdsTypes {
		out[t] = typeVersion(o[i])
	}
	return out
}

func typeVersion(items []item) string {
	h := sha256.New()
	for _, it := range items {
		h.Write([]byte(it.name))
		h.Write([]byte{0})
		h.Write([]byte(it.hash))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// resourceSnapshot is a proxy's snapshot for go-control-plane's cache.
// Unlike cachev3.Snapshot it takes its per-resource versions (delta xDS)
// from the hashes computed when its resources were built, instead of
// encoding every resource again on each push. The maps the cache reads
// are made on first use (SotW and delta read different ones) and kept.
type resourceSnapshot struct {
	out      *output
	versions map[string]string

	mu         sync.Mutex
	withTTL    map[string]map[string]types.ResourceWithTTL
	plain      map[string]map[string]types.Resource
	versionMap map[string]map[string]string
}

var _ cachev3.ResourceSnapshot = (*resourceSnapshot)(nil)

func newResourceSnapshot(o *output, versions map[string]string) *resourceSnapshot {
	return &resourceSnapshot{out: o, versions: versions}
}

// GetVersion implements cachev3.ResourceSnapshot.
func (s *resourceSnapshot) GetVersion(typeURL string) string { return s.versions[typeURL] }

// GetResourcesAndTTL implements cachev3.ResourceSnapshot.
func (s *resourceSnapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.withTTL == nil {
		s.withTTL = make(map[string]map[string]types.ResourceWithTTL, len(xdsTypes))
		for i, t := range xdsTypes {
			m := make(map[string]types.ResourceWithTTL, len(s.out[i]))
			for _, it := range s.out[i] {
				m[it.name] = types.ResourceWithTTL{Resource: it.res}
			}
			s.withTTL[t] = m
		}
	}
	return s.withTTL[typeURL]
}

// GetResources implements cachev3.ResourceSnapshot.
func (s *resourceSnapshot) GetResources(typeURL string) map[string]types.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plain == nil {
		s.plain = make(map[string]map[string]types.Resource, len(xdsTypes))
		for i, t := range xdsTypes {
			m := make(map[string]types.Resource, len(s.out[i]))
			for _, it := range s.out[i] {
				m[it.name] = it.res
			}
			s.plain[t] = m
		}
	}
	return s.plain[typeURL]
}

// ConstructVersionMap implements cachev3.ResourceSnapshot.
func (s *resourceSnapshot) ConstructVersionMap() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versionMap == nil {
		s.versionMap = make(map[string]map[string]string, len(xdsTypes))
		for i, t := range xdsTypes {
			m := make(map[string]string, len(s.out[i]))
			for _, it := range s.out[i] {
				m[it.name] = it.hash
			}
			s.versionMap[t] = m
		}
	}
	return nil
}

// GetVersionMap implements cachev3.ResourceSnapshot.
func (s *resourceSnapshot) GetVersionMap(typeURL string) map[string]string {
	_ = s.ConstructVersionMap()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versionMap[typeURL]
}
