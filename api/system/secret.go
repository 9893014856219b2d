// Package system holds the flat resource kinds that are not part of the
// traffic model: Secret, GlobalSecret and Zone.
package system

import (
	"encoding/base64"
	"errors"

	"github.com/trellis-mesh/trellis/api/validate"
)

// Secret is the Secret resource: opaque bytes scoped to one mesh, such as a
// provided CA's certificate or a gateway's TLS key, referenced by name from
// data sources.
type Secret struct {
	// Data is the secret, base64-encoded (standard or URL alphabet,
	// padding optional, as protojson accepts).
	Data string `json:"data,omitempty"`
}

// Bytes returns the decoded data.
func (x *Secret) Bytes() ([]byte, error) { return decodeData(x.Data) }

// Validate checks that data is set and is valid base64.
func (x *Secret) Validate() error { return validateData(x.Data) }

func decodeData(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("secret data is not valid base64")
}

func validateData(s string) error {
	var errs validate.Errors
	path := validate.Root().Field("data")
	if s == "" {
		errs.Add(path, "cannot be empty")
		return errs.Err()
	}
	b, err := decodeData(s)
	switch {
	case err != nil:
		errs.Add(path, "must be a base64-encoded string")
	case len(b) == 0:
		errs.Add(path, "cannot be empty")
	}
	return errs.Err()
}
