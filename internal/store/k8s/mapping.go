package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// flavor is the kind of Kubernetes object a Trellis kind is stored as.
type flavor int

const (
	// flavorCRD: a kuma.io/v1alpha1 custom resource (every registry kind
	// but the secrets).
	flavorCRD flavor = iota
	// flavorSecret: a core v1 Secret in the system namespace, as Kuma
	// stores Secret and GlobalSecret.
	flavorSecret
	// flavorConfigMap: a ConfigMap in the system namespace, for kinds the
	// registry does not know (the store takes any kind).
	flavorConfigMap
)

// Annotations and labels the store writes.
const (
	annName     = "trellis.io/name"   // the record's name, when the object name is derived
	annMesh     = "trellis.io/mesh"   // the record's mesh, when the object name is derived
	annKind     = "trellis.io/kind"   // the record's kind (ConfigMaps)
	annSpec     = "trellis.io/spec"   // the spec's exact bytes, when Kubernetes would reformat them
	annLabels   = "trellis.io/labels" // JSON of labels that are not valid Kubernetes labels
	annMeshLbl  = "trellis.io/mesh-label"
	annCreated  = "trellis.io/creation-time"
	annModified = "trellis.io/modification-time"
	// labelFallback marks the ConfigMaps holding kinds without a CRD.
	labelFallback = "trellis.io/store-record"
	// hashedPrefix starts every derived object name.
	hashedPrefix = "trellis-"
)

// mapping says where the records of one kind live.
type mapping struct {
	kind       string
	gvr        schema.GroupVersionResource
	apiVersion string
	objKind    string
	flavor     flavor
	// namespaced objects live in a namespace (the system namespace unless
	// the record name says otherwise, for CRDs).
	namespaced bool
	// meshScoped kinds have a mesh (registry scope; fallback kinds: always
	// treated as possibly mesh-scoped, the mesh comes from the record).
	meshScoped   bool
	topLevelMesh bool
	secretType   string
}

var (
	gvrSecrets    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrConfigMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

func newMappings(reg *resource.Registry) map[string]*mapping {
	out := map[string]*mapping{}
	for _, d := range reg.All() {
		m := &mapping{kind: d.Kind, meshScoped: d.Scope == resource.ScopeMesh}
		if t, ok := crd.SecretType(d.Kind); ok {
			m.flavor, m.gvr, m.apiVersion, m.objKind = flavorSecret, gvrSecrets, "v1", "Secret"
			m.namespaced, m.secretType = true, t
		} else {
			i, _ := crd.For(d)
			m.gvr = schema.GroupVersionResource{Group: crd.Group, Version: crd.Version, Resource: i.Plural}
			m.apiVersion, m.objKind = crd.APIVersion, i.Kind
			m.namespaced, m.topLevelMesh = i.Namespaced, i.TopLevelMesh
		}
		out[d.Kind] = m
	}
	return out
}

// fallbackMapping stores a kind the registry does not know.
func fallbackMapping(kind string) *mapping {
	return &mapping{kind: kind, gvr: gvrConfigMaps, apiVersion: "v1", objKind: "ConfigMap",
		flavor: flavorConfigMap, namespaced: true, meshScoped: true}
}

// location is where one object is (or would be).
type location struct {
	namespace string // empty for cluster-scoped objects
	name      string
	hashed    bool // name derived from the key; the key is in annotations
}

// candidates lists where a record may live, most Kuma-like first: its own
// name ("web" in the system namespace, or "web.team-a" → "web" in namespace
// team-a, as Kuma names namespaced objects in its REST API), then a name
// derived from a hash of (kind, mesh, name), used when the name is not a
// valid Kubernetes name or the plain one is taken by another mesh.
func (m *mapping) candidates(systemNS, mesh, name string) []location {
	var out []location
	ns := ""
	if m.namespaced {
		ns = systemNS
	}
	switch {
	case m.flavor == flavorConfigMap:
	case m.flavor == flavorCRD && m.namespaced && strings.Contains(name, "."):
		i := strings.LastIndex(name, ".")
		obj, objNS := name[:i], name[i+1:]
		if objNS != systemNS && validName(obj) && len(validation.IsDNS1123Label(objNS)) == 0 {
			out = append(out, location{namespace: objNS, name: obj})
		}
	case validName(name) && (!m.namespaced || !strings.Contains(name, ".")):
		out = append(out, location{namespace: ns, name: name})
	}
	sum := sha256.Sum256([]byte(m.kind + "\x00" + mesh + "\x00" + name))
	return append(out, location{namespace: ns, name: hashedPrefix + hex.EncodeToString(sum[:20]), hashed: true})
}

func validName(n string) bool {
	return len(validation.IsDNS1123Subdomain(n)) == 0 && !strings.HasPrefix(n, hashedPrefix)
}

func validLabel(k, v string) bool {
	return len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0
}
