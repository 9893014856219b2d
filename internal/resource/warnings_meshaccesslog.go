package resource

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
)

// meshAccessLogWarnings names the access-log format strings trellis-dp
// cannot render: Kuma accepts every Envoy operator, so such a policy is
// stored, but a proxy it selects refuses the configuration (NACK) and
// keeps its previous one. Kuma's %KUMA_*% placeholders are fine.
func meshAccessLogWarnings(spec []byte) []string {
	var v any
	if json.Unmarshal(spec, &v) != nil {
		return nil
	}
	var out []string
	walkFormats(v, "spec", &out)
	return out
}

// walkFormats finds every "format" object ({plain: s} or {json: [{key,
// value}]}) under v and checks its strings.
func walkFormats(v any, path string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			if f, ok := x[k].(map[string]any); ok && k == "format" {
				checkFormat(f, p, out)
				continue
			}
			walkFormats(x[k], p, out)
		}
	case []any:
		for i, e := range x {
			walkFormats(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func checkFormat(f map[string]any, path string, out *[]string) {
	check := func(p, s string) {
		if _, err := format.Parse(format.KumaVars{}.Interpolate(s)); err != nil {
			*out = append(*out, fmt.Sprintf("%s: %v: proxies this policy selects will refuse it", p, err))
		}
	}
	if s, ok := f["plain"].(string); ok {
		check(path+".plain", s)
	}
	if kvs, ok := f["json"].([]any); ok {
		for i, kv := range kvs {
			if m, ok := kv.(map[string]any); ok {
				if s, ok := m["value"].(string); ok {
					check(fmt.Sprintf("%s.json[%d].value", path, i), s)
				}
			}
		}
	}
}
