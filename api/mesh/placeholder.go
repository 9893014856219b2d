package mesh

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
