// Package meshproxypatch holds the MeshProxyPatch policy: its spec type and
// validation, in Kuma 2.14's shape.
//
// A MeshProxyPatch changes the Envoy configuration generated for the proxies
// of its top-level targetRef: it adds, removes or patches clusters,
// listeners, network filters, HTTP filters and virtual hosts. Patches are
// either Envoy resources written in YAML (the value fields) or RFC 6902 JSON
// patches, both kept as the user wrote them.
package meshproxypatch

import (
	"encoding/json"

	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshProxyPatch policy.
type Spec struct {
	// TargetRef selects the proxies patched; absent means the whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// Default holds the modifications.
	Default Conf `json:"default"`
}

// Conf holds the modifications of a MeshProxyPatch.
type Conf struct {
	// AppendModifications are applied in order; when several policies
	// select a proxy, their lists are concatenated. At least one is needed.
	AppendModifications []Modification `json:"appendModifications"`
}

// Modification changes one kind of Envoy resource; exactly one field is
// set.
type Modification struct {
	// Cluster changes a cluster.
	Cluster *ClusterMod `json:"cluster,omitempty"`
	// Listener changes a listener.
	Listener *ListenerMod `json:"listener,omitempty"`
	// NetworkFilter changes a network filter of a listener.
	NetworkFilter *NetworkFilterMod `json:"networkFilter,omitempty"`
	// HTTPFilter changes an HTTP filter of an HTTP connection manager.
	HTTPFilter *HTTPFilterMod `json:"httpFilter,omitempty"`
	// VirtualHost changes a virtual host of a route configuration.
	VirtualHost *VirtualHostMod `json:"virtualHost,omitempty"`
}

// Operations on Envoy resources. Clusters, listeners and virtual hosts take
// Add, Patch and Remove; filters take Patch, Remove and the positional adds.
const (
	OpAdd       = "Add"
	OpRemove    = "Remove"
	OpPatch     = "Patch"
	OpAddFirst  = "AddFirst"
	OpAddLast   = "AddLast"
	OpAddBefore = "AddBefore"
	OpAddAfter  = "AddAfter"
)

// ClusterMod adds, patches or removes clusters.
type ClusterMod struct {
	// Match picks the clusters patched or removed; not allowed with Add.
	Match *ClusterMatch `json:"match,omitempty"`
	// Operation is Add, Patch or Remove.
	Operation string `json:"operation"`
	// Value is an Envoy Cluster in YAML: the cluster to add, or the fields
	// merged into matched clusters.
	Value *string `json:"value,omitempty"`
	// JsonPatches patch matched clusters instead of Value.
	JsonPatches []JSONPatch `json:"jsonPatches,omitempty"`
}

// ClusterMatch picks clusters; every field set must fit.
type ClusterMatch struct {
	// Origin is the component that generated the cluster: inbound,
	// outbound, transparent, prometheus, gateway...
	Origin *string `json:"origin,omitempty"`
	// Name of the cluster.
	Name *string `json:"name,omitempty"`
}

// ListenerMod adds, patches or removes listeners.
type ListenerMod struct {
	// Match picks the listeners patched or removed; not allowed with Add.
	Match *ListenerMatch `json:"match,omitempty"`
	// Operation is Add, Patch or Remove.
	Operation string `json:"operation"`
	// Value is an Envoy Listener in YAML.
	Value *string `json:"value,omitempty"`
	// JsonPatches patch matched listeners instead of Value.
	JsonPatches []JSONPatch `json:"jsonPatches,omitempty"`
}

// ListenerMatch picks listeners; every field set must fit.
type ListenerMatch struct {
	// Origin is the component that generated the listener.
	Origin *string `json:"origin,omitempty"`
	// Name of the listener.
	Name *string `json:"name,omitempty"`
	// Tags the listener's metadata must carry.
	Tags map[string]string `json:"tags,omitempty"`
}

// NetworkFilterMod adds, patches or removes network filters.
type NetworkFilterMod struct {
	// Match picks the filters (and listeners) concerned.
	Match *FilterMatch `json:"match,omitempty"`
	// Operation is AddFirst, AddLast, AddBefore, AddAfter, Patch or Remove.
	Operation string `json:"operation"`
	// Value is an Envoy listener Filter in YAML.
	Value *string `json:"value,omitempty"`
	// JsonPatches patch matched filters instead of Value.
	JsonPatches []JSONPatch `json:"jsonPatches,omitempty"`
}

// HTTPFilterMod adds, patches or removes HTTP filters.
type HTTPFilterMod struct {
	// Match picks the filters (and listeners) concerned.
	Match *FilterMatch `json:"match,omitempty"`
	// Operation is AddFirst, AddLast, AddBefore, AddAfter, Patch or Remove.
	Operation string `json:"operation"`
	// Value is an Envoy HttpFilter in YAML.
	Value *string `json:"value,omitempty"`
	// JsonPatches patch matched filters instead of Value.
	JsonPatches []JSONPatch `json:"jsonPatches,omitempty"`
}

// FilterMatch picks network or HTTP filters; every field set must fit.
type FilterMatch struct {
	// Origin is the component that generated the listener.
	Origin *string `json:"origin,omitempty"`
	// Name of the filter, such as "envoy.filters.http.router". Required by
	// AddBefore, AddAfter and Patch.
	Name *string `json:"name,omitempty"`
	// ListenerName is the name of the listener holding the filter.
	ListenerName *string `json:"listenerName,omitempty"`
	// ListenerTags the listener's metadata must carry.
	ListenerTags map[string]string `json:"listenerTags,omitempty"`
}

// VirtualHostMod adds, patches or removes virtual hosts.
type VirtualHostMod struct {
	// Match picks the virtual hosts (or, for Add, the route
	// configurations) concerned.
	Match *VirtualHostMatch `json:"match,omitempty"`
	// Operation is Add, Patch or Remove.
	Operation string `json:"operation"`
	// Value is an Envoy VirtualHost in YAML.
	Value *string `json:"value,omitempty"`
	// JsonPatches patch matched virtual hosts instead of Value.
	JsonPatches []JSONPatch `json:"jsonPatches,omitempty"`
}

// VirtualHostMatch picks virtual hosts; every field set must fit.
type VirtualHostMatch struct {
	// Origin is the component that generated the route configuration.
	Origin *string `json:"origin,omitempty"`
	// Name of the virtual host; not allowed with Add.
	Name *string `json:"name,omitempty"`
	// RouteConfigurationName is the route configuration holding it.
	RouteConfigurationName *string `json:"routeConfigurationName,omitempty"`
}

// JSONPatch is one RFC 6902 operation.
type JSONPatch struct {
	// Op is add, remove, replace, move or copy.
	Op string `json:"op"`
	// Path is the JSON pointer the operation applies to.
	Path *string `json:"path,omitempty"`
	// Value is the JSON value for add and replace, kept verbatim.
	Value json.RawMessage `json:"value,omitempty"`
	// From is the source JSON pointer for move and copy.
	From *string `json:"from,omitempty"`
}
