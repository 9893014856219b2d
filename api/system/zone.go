package system

// Zone is the Zone resource: a zone control plane known to the global
// control plane.
type Zone struct {
	// Enabled says whether the zone may connect; nil means enabled.
	Enabled *bool `json:"enabled,omitempty"`
}

// IsEnabled reports whether the zone may connect (true unless disabled).
func (x *Zone) IsEnabled() bool { return x == nil || x.Enabled == nil || *x.Enabled }

// Validate has nothing to check beyond the field types; the zone's name is
// checked with the resource's metadata.
func (x *Zone) Validate() error { return nil }

var (
	_ interface{ Validate() error } = (*Secret)(nil)
	_ interface{ Validate() error } = (*GlobalSecret)(nil)
	_ interface{ Validate() error } = (*Zone)(nil)
)
