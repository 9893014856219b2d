// Package meshloadbalancingstrategy holds the MeshLoadBalancingStrategy
// policy: its spec type and validation.
//
// MeshLoadBalancingStrategy picks the load balancing algorithm for
// outbound traffic and how it prefers endpoints by locality (same node,
// same zone, then other zones in a chosen order).
package meshloadbalancingstrategy

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshLoadBalancingStrategy policy (Kuma 2.14 shape).
// It only has outbound (to) sections.
type Spec struct {
	// TargetRef selects the proxies the policy configures; absent means the
	// whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures load balancing per group of destinations.
	To []To `json:"to,omitempty"`
}

// To is one outbound section: destinations and how to balance over them.
type To struct {
	// TargetRef selects the destinations. With kind MeshHTTPRoute only
	// Default.HashPolicies may be set.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the load balancing settings.
	Default Conf `json:"default,omitzero"`
}

// Conf holds the load balancing settings.
type Conf struct {
	// LocalityAwareness orders endpoints by locality.
	LocalityAwareness *LocalityAwareness `json:"localityAwareness,omitempty"`
	// LoadBalancer is the balancing algorithm.
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`
	// HashPolicies are the request properties hashed by RingHash and Maglev
	// when set on a route (to[].targetRef.kind MeshHTTPRoute).
	HashPolicies []HashPolicy `json:"hashPolicies,omitempty"`
}

// LocalityAwareness configures locality-aware load balancing, which is on
// by default.
type LocalityAwareness struct {
	// Disabled spreads requests over all endpoints whatever their locality.
	Disabled *bool `json:"disabled,omitempty"`
	// LocalZone orders endpoints inside the local zone by tags.
	LocalZone *LocalZone `json:"localZone,omitempty"`
	// CrossZone sets where traffic goes when the local zone has no healthy
	// endpoints; without it traffic stays in the zone.
	CrossZone *CrossZone `json:"crossZone,omitempty"`
}

// LocalZone orders endpoints inside the local zone.
type LocalZone struct {
	// AffinityTags are inbound tags whose value must equal the caller's, in
	// priority order.
	AffinityTags []AffinityTag `json:"affinityTags,omitempty"`
}

// AffinityTag is one locality tag and its share of traffic.
type AffinityTag struct {
	// Key is the tag name, e.g. "k8s.io/node".
	Key string `json:"key"`
	// Weight is the tag's relative share; either every tag has one or none
	// has (then 90%, 9%, 1%, ... by order).
	Weight *uint32 `json:"weight,omitempty"`
}

// CrossZone configures failover to other zones.
type CrossZone struct {
	// Failover lists the zone groups to try, in priority order.
	Failover []Failover `json:"failover,omitempty"`
	// FailoverThreshold is the healthy percentage under which the next
	// priority is used (default 50).
	FailoverThreshold *FailoverThreshold `json:"failoverThreshold,omitempty"`
}

// Failover is one failover step.
type Failover struct {
	// From limits the step to callers in these zones (all when absent).
	From *FromZone `json:"from,omitempty"`
	// To says which zones receive the traffic.
	To ToZone `json:"to"`
}

// FromZone lists caller zones.
type FromZone struct {
	// Zones are zone names.
	Zones []string `json:"zones"`
}

// ToZone picks target zones.
type ToZone struct {
	// Type is Any, Only, AnyExcept or None.
	Type ToZoneType `json:"type"`
	// Zones are the zones Only and AnyExcept refer to.
	Zones []string `json:"zones,omitempty"`
}

// ToZoneType is how failover target zones are picked.
type ToZoneType string

// Failover target types.
const (
	// None sends no traffic to other zones.
	None ToZoneType = "None"
	// Only sends traffic only to the listed zones.
	Only ToZoneType = "Only"
	// Any sends traffic to every zone.
	Any ToZoneType = "Any"
	// AnyExcept sends traffic to every zone but the listed ones.
	AnyExcept ToZoneType = "AnyExcept"
)

// FailoverThreshold holds the failover percentage.
type FailoverThreshold struct {
	// Percentage of healthy endpoints (0-100): an integer or a decimal
	// string.
	Percentage *common.IntOrString `json:"percentage,omitempty"`
}

// LoadBalancer is a balancing algorithm and its settings.
type LoadBalancer struct {
	// Type is RoundRobin, LeastRequest, RingHash, Random or Maglev.
	Type LoadBalancerType `json:"type"`
	// RoundRobin takes endpoints in turn; it has no settings.
	RoundRobin *RoundRobin `json:"roundRobin,omitempty"`
	// LeastRequest picks the least loaded of a few random endpoints.
	LeastRequest *LeastRequest `json:"leastRequest,omitempty"`
	// RingHash is consistent hashing on a ring.
	RingHash *RingHash `json:"ringHash,omitempty"`
	// Random picks endpoints at random; it has no settings.
	Random *Random `json:"random,omitempty"`
	// Maglev is consistent hashing with Google's Maglev table.
	Maglev *Maglev `json:"maglev,omitempty"`
}

// LoadBalancerType names a balancing algorithm.
type LoadBalancerType string

// Balancing algorithms.
const (
	RoundRobinType   LoadBalancerType = "RoundRobin"
	LeastRequestType LoadBalancerType = "LeastRequest"
	RingHashType     LoadBalancerType = "RingHash"
	RandomType       LoadBalancerType = "Random"
	MaglevType       LoadBalancerType = "Maglev"
)

// RoundRobin has no settings.
type RoundRobin struct{}

// Random has no settings.
type Random struct{}

// LeastRequest configures least-request balancing.
type LeastRequest struct {
	// ChoiceCount is how many random endpoints are compared (at least 2,
	// the default).
	ChoiceCount *uint32 `json:"choiceCount,omitempty"`
	// ActiveRequestBias weighs active requests against endpoint weights
	// (default 1.0); an integer or a decimal string, not negative.
	ActiveRequestBias *common.IntOrString `json:"activeRequestBias,omitempty"`
}

// RingHash configures ring hash balancing.
type RingHash struct {
	// HashFunction is XXHash (default) or MurmurHash2.
	HashFunction *HashFunctionType `json:"hashFunction,omitempty"`
	// MinRingSize is the smallest ring (1-8000000, default 1024).
	MinRingSize *uint32 `json:"minRingSize,omitempty"`
	// MaxRingSize is the largest ring (1-8000000, default 8M).
	MaxRingSize *uint32 `json:"maxRingSize,omitempty"`
	// HashPolicies are the request properties hashed, in order.
	HashPolicies []HashPolicy `json:"hashPolicies,omitempty"`
}

// HashFunctionType names a ring hash function.
type HashFunctionType string

// Hash functions.
const (
	XXHashType      HashFunctionType = "XXHash"
	MurmurHash2Type HashFunctionType = "MurmurHash2"
)

// Maglev configures Maglev balancing.
type Maglev struct {
	// TableSize is the lookup table size, a prime up to 5000011 (default
	// 65537).
	TableSize *uint32 `json:"tableSize,omitempty"`
	// HashPolicies are the request properties hashed, in order.
	HashPolicies []HashPolicy `json:"hashPolicies,omitempty"`
}

// HashPolicy is one request property to hash.
type HashPolicy struct {
	// Type is Header, Cookie, Connection, QueryParameter or FilterState;
	// the field of the same name must be set.
	Type HashPolicyType `json:"type"`
	// Terminal stops at this policy when it produced a hash.
	Terminal *bool `json:"terminal,omitempty"`
	// Header hashes a request header.
	Header *Header `json:"header,omitempty"`
	// Cookie hashes a cookie, generating it when TTL is set.
	Cookie *Cookie `json:"cookie,omitempty"`
	// Connection hashes connection properties.
	Connection *Connection `json:"connection,omitempty"`
	// QueryParameter hashes a URL query parameter.
	QueryParameter *QueryParameter `json:"queryParameter,omitempty"`
	// FilterState hashes an Envoy filter state object.
	FilterState *FilterState `json:"filterState,omitempty"`
}

// HashPolicyType names a hash policy.
type HashPolicyType string

// Hash policy types.
const (
	HeaderType         HashPolicyType = "Header"
	CookieType         HashPolicyType = "Cookie"
	ConnectionType     HashPolicyType = "Connection"
	QueryParameterType HashPolicyType = "QueryParameter"
	FilterStateType    HashPolicyType = "FilterState"
)

// Header names the hashed request header.
type Header struct {
	// Name is the header name.
	Name string `json:"name"`
}

// Cookie names the hashed cookie.
type Cookie struct {
	// Name is the cookie name.
	Name string `json:"name"`
	// TTL, when set, makes Envoy generate the cookie if it is missing.
	TTL *common.Duration `json:"ttl,omitempty"`
	// Path is the generated cookie's path; it must be absolute.
	Path *string `json:"path,omitempty"`
}

// Connection selects connection properties to hash.
type Connection struct {
	// SourceIP hashes the client's IP address.
	SourceIP *bool `json:"sourceIP,omitempty"`
}

// QueryParameter names the hashed query parameter.
type QueryParameter struct {
	// Name is the parameter name (case-sensitive).
	Name string `json:"name"`
}

// FilterState names the hashed filter state object.
type FilterState struct {
	// Key is the object's key in the request's filter state.
	Key string `json:"key"`
}
