package ctl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/resource"
)

// resolveKind finds the kind a user typed ("meshtimeout", "meshtimeouts",
// "MeshTimeout", a short name); the error lists the valid names.
func (r *root) resolveKind(name string) (*resource.Descriptor, error) {
	if d, ok := r.reg.ByName(name); ok {
		return d, nil
	}
	for _, candidate := range []string{name, strings.ToLower(name), strings.ToLower(name) + "s", strings.ToLower(name) + "es"} {
		if kind, ok := r.reg.Unsupported(candidate); ok {
			return nil, fmt.Errorf("%s is not supported yet by Trellis", kind)
		}
	}
	return nil, fmt.Errorf("unknown resource type %q; valid types are: %s", name, strings.Join(r.kindPaths(), ", "))
}

// kindPaths lists the plural names of every kind, sorted.
func (r *root) kindPaths() []string {
	var out []string
	for _, d := range r.reg.All() {
		out = append(out, d.Path)
	}
	sort.Strings(out)
	return out
}

// completeKinds completes the first argument with kind names.
func (r *root) completeKinds(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return r.kindPaths(), cobra.ShellCompDirectiveNoFileComp
}

// meshFor returns the mesh part of a resource's REST path: the given mesh
// for mesh-scoped kinds, nothing for global ones.
func meshFor(d *resource.Descriptor, mesh string) string {
	if d.Scope == resource.ScopeMesh {
		return mesh
	}
	return ""
}

// describeRef names a resource in messages: `MeshTimeout "x" in mesh "m"`.
func describeRef(d *resource.Descriptor, mesh, name string) string {
	if d.Scope == resource.ScopeMesh && mesh != "" {
		return fmt.Sprintf("%s %q in mesh %q", d.Kind, name, mesh)
	}
	return fmt.Sprintf("%s %q", d.Kind, name)
}
