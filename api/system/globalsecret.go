package system

// GlobalSecret is the GlobalSecret resource: a Secret that lives beside
// meshes instead of inside one (e.g. the control plane's own signing keys).
type GlobalSecret struct {
	// Data is the secret, base64-encoded.
	Data string `json:"data,omitempty"`
}

// Bytes returns the decoded data.
func (x *GlobalSecret) Bytes() ([]byte, error) { return decodeData(x.Data) }

// Validate checks that data is set and is valid base64.
func (x *GlobalSecret) Validate() error { return validateData(x.Data) }
