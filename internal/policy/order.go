package policy

import (
	"cmp"

	"github.com/trellis-mesh/trellis/api/common"
)

// attrs are what orders a policy among others of its kind.
type attrs struct {
	// top is the top-level targetRef (nil means the whole mesh).
	top    *common.TargetRef
	origin string
	// display is the name ties are broken by.
	display string
	// seq is the policy's position in the input, for a total order.
	seq int
}

func newAttrs(p Policy, top *common.TargetRef, seq int) attrs {
	origin := p.Labels[OriginLabel]
	if origin != OriginGlobal {
		origin = OriginZone
	}
	display := p.Name
	if d := p.Labels[DisplayNameLabel]; d != "" {
		display = d
	}
	return attrs{top: top, origin: origin, display: display, seq: seq}
}

// originRank orders origins: global policies are less specific than zone
// ones.
func originRank(o string) int {
	if o == OriginGlobal {
		return 0
	}
	return 1
}

// compareTop orders by the top-level targetRef: its kind, then (between
// Dataplane refs) one with sectionName after one without.
func compareTop(a, b *common.TargetRef) int {
	ka, kb := common.TopKind(a), common.TopKind(b)
	if c := ka.Compare(kb); c != 0 {
		return c
	}
	if ka == common.Dataplane {
		return cmp.Compare(boolRank(a.SectionName != ""), boolRank(b.SectionName != ""))
	}
	return 0
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// comparePolicies orders two policies from least to most specific:
// top-level targetRef, origin, then name in reverse lexical order (so that
// "a" sorts last and wins).
func comparePolicies(a, b attrs) int {
	if c := compareTop(a.top, b.top); c != 0 {
		return c
	}
	if c := cmp.Compare(originRank(a.origin), originRank(b.origin)); c != 0 {
		return c
	}
	if c := cmp.Compare(b.display, a.display); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// section is one from[] or to[] item (or a top-level default) of a policy.
type section struct {
	policy attrs
	name   string
	// ref is the section's own targetRef; nil for a top-level default.
	ref   *common.TargetRef
	index int
	conf  []byte
}

// compareSections orders sections from least to most specific: the
// top-level targetRef, origin, the section's targetRef kind, the policy
// name reversed, then position in the policy (DESIGN.md §4).
func compareSections(a, b section) int {
	if c := compareTop(a.policy.top, b.policy.top); c != 0 {
		return c
	}
	if c := cmp.Compare(originRank(a.policy.origin), originRank(b.policy.origin)); c != 0 {
		return c
	}
	if c := common.TopKind(a.ref).Compare(common.TopKind(b.ref)); c != 0 {
		return c
	}
	if c := cmp.Compare(b.policy.display, a.policy.display); c != 0 {
		return c
	}
	if c := cmp.Compare(a.policy.seq, b.policy.seq); c != 0 {
		return c
	}
	return cmp.Compare(a.index, b.index)
}
