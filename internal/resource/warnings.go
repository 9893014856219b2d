package resource

import "encoding/json"

// Warnings lists the deprecated shapes a resource uses, as Kuma 2.14 warns
// on PUT: `from` sections (replaced by `rules`) and top-level MeshService
// targetRefs (replaced by Dataplane targetRefs with labels). Both are still
// accepted.
func Warnings(res *Resource) []string {
	if !res.Desc.IsPolicy() {
		return nil
	}
	js, err := json.Marshal(res.Spec)
	if err != nil {
		return nil
	}
	var spec struct {
		TargetRef *struct {
			Kind string `json:"kind"`
		} `json:"targetRef"`
		From []json.RawMessage `json:"from"`
	}
	if json.Unmarshal(js, &spec) != nil {
		return nil
	}
	var out []string
	if len(spec.From) > 0 && res.Desc.Policy != nil && res.Desc.Policy.HasRules {
		out = append(out, "spec.from: `from` is deprecated, use `rules` instead")
	}
	if spec.TargetRef != nil && (spec.TargetRef.Kind == "MeshService" || spec.TargetRef.Kind == "MeshServiceSubset") {
		out = append(out, "spec.targetRef.kind: "+spec.TargetRef.Kind+" as a top-level targetRef is deprecated, use Dataplane with labels instead")
	}
	if res.Desc.Kind == "MeshMetric" {
		out = append(out, meshMetricWarnings(js)...)
	}
	if res.Desc.Kind == "MeshAccessLog" {
		out = append(out, meshAccessLogWarnings(js)...)
	}
	return out
}
