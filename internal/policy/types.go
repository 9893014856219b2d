package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// Labels the control plane reads on policies.
const (
	// OriginLabel says where a policy was created: OriginGlobal (synced
	// from the global control plane) or OriginZone.
	OriginLabel = "kuma.io/origin"
	// DisplayNameLabel is the name the user gave, when the stored name
	// differs (synced or namespaced resources); it decides ties.
	DisplayNameLabel = "kuma.io/display-name"
)

// Origins (values of OriginLabel).
const (
	OriginGlobal = "global"
	OriginZone   = "zone"
)

// Dataplane is the proxy policies are matched against.
type Dataplane struct {
	Name string
	// Labels are the Dataplane resource's labels (Dataplane targetRefs
	// select by them).
	Labels map[string]string
	Spec   *mesh.Dataplane
}

// Policy is one policy resource of the kind being matched.
type Policy struct {
	Name   string
	Labels map[string]string
	// Spec is the policy's spec: a pointer to the kind's API type (such as
	// *meshtimeout.Spec) or anything that encodes to the same JSON
	// (json.RawMessage, a map). It is read through its JSON encoding.
	Spec any
}

// Ref names a policy in results.
type Ref struct {
	Name string `json:"name"`
	// Origin is OriginGlobal or OriginZone.
	Origin string `json:"origin"`
}

// Matched is what the policies of one kind say about one proxy.
type Matched struct {
	// Policies select the proxy (an inbound, its gateway or the proxy as a
	// whole), least to most specific.
	Policies []Ref `json:"policies"`
	// Inbounds has one item per inbound of the proxy that is not ignored,
	// in Dataplane order, whether or not a policy selects it.
	Inbounds []Inbound `json:"inbounds"`
	// To are the destination rules merged from the to[] sections of
	// Policies; Compute them with a destination's tags.
	To Rules `json:"to"`
	// Single is the merged top-level default of Policies; nil when none
	// has one.
	Single *Rule `json:"single,omitempty"`
	// Notes say which policies or sections were skipped, and why.
	Notes []string `json:"notes,omitempty"`
}

// Outbound returns the merged to[] conf for traffic to a kuma.io/service
// (the first To rule whose subset the service's tags include), or nil
// when no to[] section matches it.
func (m *Matched) Outbound(service string) *Rule {
	return m.To.Compute(map[string]string{mesh.ServiceTag: service})
}

// Inbound is one inbound of the proxy with what the policies say about it.
type Inbound struct {
	// Index is the inbound's position in networking.inbound.
	Index int `json:"index"`
	// Name is the inbound's name (may be empty).
	Name string `json:"name,omitempty"`
	// Address and Port are where the proxy listens for it.
	Address string            `json:"address"`
	Port    uint32            `json:"port"`
	Tags    map[string]string `json:"tags"`
	// Policies select this inbound, least to most specific.
	Policies []Ref `json:"policies"`
	// From are the client rules merged from their from[] sections.
	From Rules `json:"from"`
	// Rules are their rules[] items, unmerged, least to most specific.
	Rules []Entry `json:"rules"`
}

// Service returns the inbound's kuma.io/service.
func (in *Inbound) Service() string { return in.Tags[mesh.ServiceTag] }

// Entry is one rules[] item of a policy, as written.
type Entry struct {
	// Policy names the policy and Index the item's position in its rules.
	Policy string `json:"policy"`
	Index  int    `json:"index"`
	// Matches is the item's matches (nil when absent).
	Matches json.RawMessage `json:"matches,omitempty"`
	// Conf is the item's default.
	Conf json.RawMessage `json:"conf"`
}

// Rules is an ordered list of rules: the first whose subset matches wins.
type Rules []Rule

// Rule is the merged conf for the clients or destinations of a subset.
type Rule struct {
	Subset Subset `json:"subset"`
	// Conf is the merged default, a JSON object.
	Conf json.RawMessage `json:"conf"`
	// Origins name the policies merged into Conf, in merge order.
	Origins []string `json:"origins"`
}

// Compute returns the first rule whose subset tags includes, or nil.
func (rs Rules) Compute(tags map[string]string) *Rule {
	for i := range rs {
		if rs[i].Subset.Matches(tags) {
			return &rs[i]
		}
	}
	return nil
}

// Subset is a group of clients or destinations: those carrying all its
// tags. The empty subset is everyone in the mesh.
type Subset map[string]string

// Matches reports whether tags carry every tag of the subset.
func (s Subset) Matches(tags map[string]string) bool {
	for k, v := range s {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Service returns the subset's kuma.io/service ("" when it has none).
func (s Subset) Service() string { return s[mesh.ServiceTag] }

// String renders the subset as "{k1=v1, k2=v2}" with sorted keys.
func (s Subset) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%s", k, s[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// MarshalJSON encodes a nil subset as {} (everyone), not null.
func (s Subset) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(s))
}

// Decode decodes a merged conf into the kind's conf type.
func Decode[T any](conf json.RawMessage) (T, error) {
	var v T
	if len(conf) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(conf, &v); err != nil {
		return v, fmt.Errorf("decoding a merged %T: %w", v, err)
	}
	return v, nil
}

// TypedRule is a Rule with its conf decoded.
type TypedRule[T any] struct {
	Subset  Subset
	Conf    T
	Origins []string
}

// Typed decodes the confs of rules into T, keeping their order.
func Typed[T any](rules Rules) ([]TypedRule[T], error) {
	out := make([]TypedRule[T], 0, len(rules))
	for _, r := range rules {
		c, err := Decode[T](r.Conf)
		if err != nil {
			return nil, fmt.Errorf("rule for %s: %w", r.Subset, err)
		}
		out = append(out, TypedRule[T]{Subset: r.Subset, Conf: c, Origins: r.Origins})
	}
	return out, nil
}
