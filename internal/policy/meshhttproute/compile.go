package meshhttproute

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"

	api "github.com/trellis-mesh/trellis/api/policy/meshhttproute"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// defaultStatus is a RequestRedirect's status code when none is given.
const defaultStatus = 302

// defaultWeight is the weight of the destination itself when a rule names
// no backendRefs; a backendRef without a weight weighs 1.
const defaultWeight = 100

// Fill sets the HTTP routes of out from sorted routes (SortRules), and the
// clusters they name besides out's own. A route left without a backend
// (every backendRef weighs 0 or is of an unsupported kind) is dropped, as
// Kuma drops it.
func Fill(out *proxymodel.Outbound, routes []Route) error {
	out.HTTPRoutes = []proxymodel.HTTPRoute{}
	for i, r := range routes {
		hr, ok, err := compileRoute(out, r)
		if err != nil {
			return fmt.Errorf("route %d: %w", i, err)
		}
		if ok {
			out.HTTPRoutes = append(out.HTTPRoutes, hr)
		}
	}
	sort.Slice(out.RouteClusters, func(i, j int) bool { return out.RouteClusters[i].Name < out.RouteClusters[j].Name })
	return nil
}

func compileRoute(out *proxymodel.Outbound, r Route) (proxymodel.HTTPRoute, bool, error) {
	hr := proxymodel.HTTPRoute{Match: compileMatch(r.Match)}
	prefix := ""
	if hr.Match.PathType == proxymodel.PathPrefix {
		prefix = hr.Match.Path
	}
	var filters []api.Filter
	if r.Default.Filters != nil {
		filters = *r.Default.Filters
	}
	for _, f := range filters {
		if f.Type == api.RequestRedirectType && f.RequestRedirect != nil {
			hr.Redirect = compileRedirect(*f.RequestRedirect, prefix)
		}
	}
	for _, f := range filters {
		switch {
		case f.Type == api.RequestHeaderModifierType && f.RequestHeaderModifier != nil:
			addHeaderChanges(&hr.RequestHeaders, *f.RequestHeaderModifier)
		case f.Type == api.ResponseHeaderModifierType && f.ResponseHeaderModifier != nil:
			addHeaderChanges(&hr.ResponseHeaders, *f.ResponseHeaderModifier)
		case hr.Redirect != nil:
			// A redirect answers: nothing is forwarded to rewrite or mirror.
		case f.Type == api.URLRewriteType && f.URLRewrite != nil:
			hr.Rewrite = compileRewrite(*f.URLRewrite, prefix, hr.Rewrite)
		case f.Type == api.RequestMirrorType && f.RequestMirror != nil:
			m, ok, err := compileMirror(out, *f.RequestMirror)
			if err != nil {
				return hr, false, err
			}
			if ok {
				hr.Mirrors = append(hr.Mirrors, m)
			}
		}
	}
	if hr.Redirect != nil {
		return hr, true, nil
	}
	hr.Backends = backends(out, r.Default.BackendRefs)
	return hr, len(hr.Backends) > 0, nil
}

// compileMatch copies a match into the model: a PathPrefix value loses its
// trailing slash (it matches at a '/' boundary anyway) unless it is "/";
// a header or query parameter named twice counts once, as in Kuma.
func compileMatch(m api.Match) proxymodel.HTTPMatch {
	var hm proxymodel.HTTPMatch
	if m.Path != nil {
		hm.PathType, hm.Path = string(m.Path.Type), m.Path.Value
		if m.Path.Type == api.PathPrefix {
			hm.Path = normalizePrefix(m.Path.Value)
		}
	}
	if m.Method != nil {
		hm.Method = string(*m.Method)
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		if seen[h.Name] {
			continue
		}
		seen[h.Name] = true
		t := api.HeaderMatchExact
		if h.Type != nil {
			t = *h.Type
		}
		if t == api.HeaderMatchPrefix && h.Value == "" {
			t = api.HeaderMatchPresent
		}
		hm.Headers = append(hm.Headers, proxymodel.ValueMatch{Type: string(t), Name: h.Name, Value: h.Value})
	}
	seen = map[string]bool{}
	for _, q := range m.QueryParams {
		if seen[q.Name] {
			continue
		}
		seen[q.Name] = true
		hm.QueryParams = append(hm.QueryParams, proxymodel.ValueMatch{Type: string(q.Type), Name: q.Name, Value: q.Value})
	}
	return hm
}

func normalizePrefix(v string) string {
	if t := strings.TrimRight(v, "/"); t != "" {
		return t
	}
	return "/"
}

// backends resolves backendRefs to weighted clusters; none means the
// destination itself. Refs of weight 0 and of kinds other than
// MeshService and MeshServiceSubset are left out; refs to one cluster
// are summed, in the order of their first appearance.
func backends(out *proxymodel.Outbound, refs *[]common.BackendRef) []proxymodel.RouteBackend {
	if refs == nil || len(*refs) == 0 {
		return []proxymodel.RouteBackend{{Cluster: out.Service, Weight: defaultWeight}}
	}
	var bs []proxymodel.RouteBackend
	for _, ref := range *refs {
		w := uint32(1)
		if ref.Weight != nil {
			w = *ref.Weight
		}
		if w == 0 {
			continue
		}
		cluster, ok := clusterOf(out, ref.TargetRef)
		if !ok {
			continue
		}
		merged := false
		for i := range bs {
			if bs[i].Cluster == cluster {
				bs[i].Weight += w
				merged = true
			}
		}
		if !merged {
			bs = append(bs, proxymodel.RouteBackend{Cluster: cluster, Weight: w})
		}
	}
	return bs
}

// Backends is backends for MeshTCPRoute, which shares the resolution.
func Backends(out *proxymodel.Outbound, refs []common.BackendRef) []proxymodel.RouteBackend {
	if len(refs) == 0 {
		return nil
	}
	return backends(out, &refs)
}

// clusterOf returns the cluster of a MeshService or MeshServiceSubset
// ref, adding it to the outbound's route clusters.
func clusterOf(out *proxymodel.Outbound, ref common.TargetRef) (string, bool) {
	switch ref.Kind {
	case common.MeshService:
		if ref.Name == "" {
			return "", false
		}
		return out.RouteCluster(ref.Name, nil), true
	case common.MeshServiceSubset:
		return out.RouteCluster(ref.Name, ref.Tags), true
	}
	return "", false
}

// addHeaderChanges appends a header modifier's edits as Kuma does: a
// value with commas is several values, the first of a set replaces.
func addHeaderChanges(hc *proxymodel.HeaderChanges, m api.HeaderModifier) {
	for _, kv := range m.Set {
		for i, v := range strings.Split(kv.Value, ",") {
			hc.Add = append(hc.Add, proxymodel.HeaderValue{Name: kv.Name, Value: v, Replace: i == 0})
		}
	}
	for _, kv := range m.Add {
		for _, v := range strings.Split(kv.Value, ",") {
			hc.Add = append(hc.Add, proxymodel.HeaderValue{Name: kv.Name, Value: v})
		}
	}
	hc.Remove = append(hc.Remove, m.Remove...)
}

func compileRedirect(r api.RequestRedirect, prefix string) *proxymodel.Redirect {
	rd := &proxymodel.Redirect{Status: defaultStatus}
	if r.StatusCode != nil {
		rd.Status = *r.StatusCode
	}
	if r.Scheme != nil {
		rd.Scheme = *r.Scheme
	}
	if r.Hostname != nil {
		rd.Host = *r.Hostname
	}
	if r.Port != nil {
		rd.Port = *r.Port
	}
	if p := r.Path; p != nil {
		switch {
		case p.Type == api.ReplaceFullPathType && p.ReplaceFullPath != nil:
			rd.Path = *p.ReplaceFullPath
		case p.Type == api.ReplacePrefixMatchType && p.ReplacePrefixMatch != nil && prefix != "":
			rd.HasPrefixRewrite = true
			rd.PrefixRewrite = strings.TrimRight(*p.ReplacePrefixMatch, "/")
			if prefix == "/" {
				rd.PrefixRewrite += "/"
			}
		}
	}
	return rd
}

// compileRewrite folds a URLRewrite into rw (nil when none came before).
// A full path replacement is a regex rewrite of the whole path; a prefix
// replacement is a prefix rewrite of the matched prefix, except that
// replacing a prefix other than "/" with "/" removes it with a regex
// rewrite (a prefix rewrite would leave "//rest").
func compileRewrite(u api.URLRewrite, prefix string, rw *proxymodel.Rewrite) *proxymodel.Rewrite {
	if rw == nil {
		rw = &proxymodel.Rewrite{}
	}
	if u.Hostname != nil {
		rw.Host = *u.Hostname
	}
	p := u.Path
	switch {
	case p == nil:
	case p.Type == api.ReplaceFullPathType && p.ReplaceFullPath != nil:
		rw.HasPrefixRewrite, rw.PrefixRewrite = false, ""
		rw.RegexPattern, rw.RegexSubstitution = "^.*$", *p.ReplaceFullPath
	case p.Type == api.ReplacePrefixMatchType && p.ReplacePrefixMatch != nil && prefix != "":
		repl := strings.TrimRight(*p.ReplacePrefixMatch, "/")
		rw.HasPrefixRewrite, rw.PrefixRewrite = false, ""
		rw.RegexPattern, rw.RegexSubstitution = "", ""
		switch {
		case prefix == "/":
			rw.HasPrefixRewrite, rw.PrefixRewrite = true, repl+"/"
		case repl == "":
			rw.RegexPattern, rw.RegexSubstitution = "^"+regexp.QuoteMeta(prefix)+"/*", "/"
		default:
			rw.HasPrefixRewrite, rw.PrefixRewrite = true, repl
		}
	}
	return rw
}

// compileMirror resolves a mirror's backend and percentage (a whole
// percentage over 100, one with up to two decimals over 10,000, others
// rounded over 1,000,000, as Kuma converts it).
func compileMirror(out *proxymodel.Outbound, m api.RequestMirror) (proxymodel.Mirror, bool, error) {
	cluster, ok := clusterOf(out, m.BackendRef.TargetRef)
	if !ok {
		return proxymodel.Mirror{}, false, nil
	}
	mr := proxymodel.Mirror{Cluster: cluster}
	if m.Percentage == nil {
		return mr, true, nil
	}
	r, err := m.Percentage.Rat()
	if err != nil {
		return mr, false, fmt.Errorf("requestMirror percentage: %w", err)
	}
	for _, d := range []int64{100, 10000, 1000000} {
		n := new(big.Rat).Mul(r, big.NewRat(d, 100))
		if n.IsInt() || d == 1000000 {
			f, _ := n.Float64()
			mr.Numerator, mr.Denominator = uint32(f+0.5), uint32(d)
			break
		}
	}
	return mr, true, nil
}
