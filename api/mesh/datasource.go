package mesh

import (
	"encoding/base64"
	"fmt"

	"github.com/trellis-mesh/trellis/api/validate"
)

// DataSource says where some bytes (a certificate, a key) come from.
// Exactly one field is set.
type DataSource struct {
	// Secret names a Secret of the same mesh.
	Secret *string `json:"secret,omitempty"`
	// File is a path on the control plane's file system.
	File *string `json:"file,omitempty"`
	// Inline holds the bytes, base64-encoded.
	Inline *string `json:"inline,omitempty"`
	// InlineString holds the bytes as a plain string.
	InlineString *string `json:"inlineString,omitempty"`
}

// InlineBytes returns the decoded bytes of an inline or inlineString
// source, and false for secret and file sources that need a loader.
func (d *DataSource) InlineBytes() ([]byte, bool) {
	switch {
	case d == nil:
		return nil, false
	case d.Inline != nil:
		b, err := DecodeBase64(*d.Inline)
		return b, err == nil
	case d.InlineString != nil:
		return []byte(*d.InlineString), true
	}
	return nil, false
}

// DecodeBase64 decodes s the way protojson decodes bytes fields: standard or
// URL-safe alphabet, with or without padding.
func DecodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%q is not valid base64", s)
}

// validateDataSource checks a data source at path; a nil source is
// reported as missing.
func validateDataSource(errs *validate.Errors, path validate.Path, d *DataSource) {
	if d == nil {
		errs.Add(path, "must be defined")
		return
	}
	set := 0
	for _, f := range []struct {
		name string
		v    *string
	}{{"secret", d.Secret}, {"file", d.File}, {"inline", d.Inline}, {"inlineString", d.InlineString}} {
		if f.v == nil {
			continue
		}
		set++
		if *f.v == "" {
			errs.Add(path.Field(f.name), "cannot be empty")
		}
	}
	switch {
	case set == 0:
		errs.Add(path, "data source has to be chosen. Available sources: secret, file, inline, inlineString")
	case set > 1:
		errs.Add(path, "only one of secret, file, inline or inlineString may be set")
	}
	if d.Inline != nil && *d.Inline != "" {
		if _, err := DecodeBase64(*d.Inline); err != nil {
			errs.Add(path.Field("inline"), "must be a base64-encoded string")
		}
	}
	if d.Secret != nil && *d.Secret != "" {
		if reason := validate.Name(*d.Secret); reason != "" {
			errs.Add(path.Field("secret"), reason)
		}
	}
}
