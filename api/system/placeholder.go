// Package system holds flat resource kinds. PLACEHOLDER types accept any object.
package system

// Secret is the Secret resource. PLACEHOLDER.
type Secret map[string]any

// Validate checks every field.
func (x *Secret) Validate() error { return nil }

// GlobalSecret is the GlobalSecret resource. PLACEHOLDER.
type GlobalSecret map[string]any

// Validate checks every field.
func (x *GlobalSecret) Validate() error { return nil }

// Zone is the Zone resource. PLACEHOLDER.
type Zone map[string]any

// Validate checks every field.
func (x *Zone) Validate() error { return nil }
