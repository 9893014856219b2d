package meshproxypatch

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topRefs are the kinds Kuma 2.14 accepts for a MeshProxyPatch's targetRef.
var topRefs = common.RefRules{Allowed: []common.TargetRefKind{
	common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset,
	common.MeshGateway, common.Dataplane,
}}

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec. Envoy resources in value fields are checked to be YAML objects; their
// fields are not checked against Envoy's API.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	if s.TargetRef != nil {
		common.ValidateTargetRef(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
	}
	mods := root.Field("default").Field("appendModifications")
	if len(s.Default.AppendModifications) == 0 {
		errs.Add(mods, "must not be empty")
	}
	for i, m := range s.Default.AppendModifications {
		validateModification(&errs, mods.Index(i), m)
	}
	return errs.Err()
}

func validateModification(errs *validate.Errors, path validate.Path, m Modification) {
	n := 0
	for _, set := range []bool{m.Cluster != nil, m.Listener != nil, m.NetworkFilter != nil, m.HTTPFilter != nil, m.VirtualHost != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs.Addf(path, "exactly one modification can be defined at a time. Currently, %d modifications are defined", n)
		return
	}
	switch {
	case m.Cluster != nil:
		c := m.Cluster
		validateResourceMod(errs, path.Field("cluster"), c.Operation, c.Match != nil, c.Value, c.JsonPatches)
	case m.Listener != nil:
		l := m.Listener
		validateResourceMod(errs, path.Field("listener"), l.Operation, l.Match != nil, l.Value, l.JsonPatches)
	case m.VirtualHost != nil:
		v := m.VirtualHost
		p := path.Field("virtualHost")
		if v.Operation == OpAdd && v.Match != nil && v.Match.Name != nil {
			errs.Add(p.Field("match").Field("name"), "must not be defined")
		}
		validateResourceMod(errs, p, v.Operation, false, v.Value, v.JsonPatches)
	case m.NetworkFilter != nil:
		f := m.NetworkFilter
		validateFilterMod(errs, path.Field("networkFilter"), f.Operation, f.Match, f.Value, f.JsonPatches)
	case m.HTTPFilter != nil:
		f := m.HTTPFilter
		validateFilterMod(errs, path.Field("httpFilter"), f.Operation, f.Match, f.Value, f.JsonPatches)
	}
}

// validateResourceMod checks a cluster, listener or virtual host change;
// matchSet forbids a match on Add.
func validateResourceMod(errs *validate.Errors, path validate.Path, op string, matchSet bool, value *string, patches []JSONPatch) {
	switch op {
	case OpAdd:
		if matchSet {
			errs.Add(path.Field("match"), "must not be defined")
		}
		validateResourceValue(errs, path.Field("value"), value)
	case OpPatch:
		validatePatch(errs, path, value, patches)
	case OpRemove:
		if value != nil {
			errs.Add(path.Field("value"), "must not be defined")
		}
	default:
		errs.Add(path.Field("operation"), operationsMsg(OpAdd, OpPatch, OpRemove))
	}
}

func validateFilterMod(errs *validate.Errors, path validate.Path, op string, match *FilterMatch, value *string, patches []JSONPatch) {
	named := match != nil && match.Name != nil
	name := path.Field("match").Field("name")
	switch op {
	case OpAddFirst, OpAddLast:
		validateResourceValue(errs, path.Field("value"), value)
	case OpAddBefore, OpAddAfter:
		if !named {
			where := "before"
			if op == OpAddAfter {
				where = "after"
			}
			errs.Addf(name, "must be defined. You need to pick a filter %s which this one will be added", where)
		}
		validateResourceValue(errs, path.Field("value"), value)
	case OpPatch:
		if !named {
			errs.Add(name, "must be defined")
		}
		validatePatch(errs, path, value, patches)
	case OpRemove:
		if value != nil {
			errs.Add(path.Field("value"), "must not be defined")
		}
	default:
		errs.Add(path.Field("operation"), operationsMsg(OpAddFirst, OpAddLast, OpAddBefore, OpAddAfter, OpPatch, OpRemove))
	}
}

func operationsMsg(ops ...string) string {
	quoted := make([]string, len(ops))
	for i, op := range ops {
		quoted[i] = fmt.Sprintf("%q", op)
	}
	return "invalid operation. Available operations: " + strings.Join(quoted, ", ")
}

// validateResourceValue requires value to be a YAML (or JSON) object.
func validateResourceValue(errs *validate.Errors, path validate.Path, value *string) {
	if value == nil {
		errs.Add(path, "must be defined")
		return
	}
	validateYAMLObject(errs, path, *value)
}

func validateYAMLObject(errs *validate.Errors, path validate.Path, value string) {
	js, err := yaml.YAMLToJSON([]byte(value))
	if err != nil {
		errs.Addf(path, "native Envoy resource is not valid: %v", err)
		return
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil || obj == nil {
		errs.Add(path, "native Envoy resource is not valid: must be a YAML object")
	}
}

// validatePatch requires exactly one of a YAML value and JSON patches.
func validatePatch(errs *validate.Errors, path validate.Path, value *string, patches []JSONPatch) {
	switch {
	case value != nil && len(patches) > 0:
		errs.Add(path, "must have only one type defined: value, jsonPatches")
	case value != nil:
		validateYAMLObject(errs, path.Field("value"), *value)
	case len(patches) > 0:
		for i, p := range patches {
			validateJSONPatch(errs, path.Field("jsonPatches").Index(i), p)
		}
	default:
		errs.Add(path, "must have exactly one defined: value, jsonPatches")
	}
}

func validateJSONPatch(errs *validate.Errors, path validate.Path, p JSONPatch) {
	validate.Enum(errs, path.Field("op"), p.Op, "add", "remove", "replace", "move", "copy")
	moveOrCopy := p.Op == "move" || p.Op == "copy"
	switch {
	case moveOrCopy && p.From == nil:
		errs.Add(path.Field("from"), "must be defined when op is move or copy")
	case !moveOrCopy && p.From != nil:
		errs.Add(path.Field("from"), "is allowed only when op is move or copy")
	case p.From != nil && !isPointer(*p.From):
		errs.Add(path.Field("from"), "must be a JSON pointer: empty or starting with '/'")
	}
	addOrReplace := p.Op == "add" || p.Op == "replace"
	switch {
	case addOrReplace && p.Value == nil:
		errs.Add(path.Field("value"), "must be defined when op is add or replace")
	case !addOrReplace && p.Value != nil:
		errs.Add(path.Field("value"), "is allowed only when op is add or replace")
	}
	switch {
	case p.Path == nil:
		errs.Add(path.Field("path"), "must be defined")
	case !isPointer(*p.Path):
		errs.Add(path.Field("path"), "must be a JSON pointer: empty or starting with '/'")
	case p.Op == "remove" && (*p.Path == "" || *p.Path == "/"):
		errs.Add(path.Field("path"), "root path cannot be removed")
	}
}

// isPointer reports whether s is an RFC 6901 JSON pointer: empty, or '/'
// followed by reference tokens in which '~' only escapes 0 or 1.
func isPointer(s string) bool {
	if s == "" {
		return true
	}
	if !strings.HasPrefix(s, "/") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '~' && (i+1 == len(s) || (s[i+1] != '0' && s[i+1] != '1')) {
			return false
		}
	}
	return true
}
