package common

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"

	"github.com/trellis-mesh/trellis/api/validate"
)

// IntOrString is a value Kuma lets users write either as a JSON integer
// (50) or as a string ("50", "0.5"), such as sampling rates and mirror
// percentages. It keeps the form and the text the user wrote, so that a
// decoded spec encodes back to the same JSON.
//
// Decoding never fails: a value of another JSON type (a fraction written as
// a bare number, a boolean, an object) is kept aside and reported by
// ValidateIntOrString with the field's full path, which a decode error could
// not name.
type IntOrString struct {
	// text is the string value, or the integer's decimal digits.
	text string
	// isString reports whether the user wrote a JSON string.
	isString bool
	// invalid holds the raw JSON of a value that is neither an integer nor a
	// string; it is empty for valid values.
	invalid json.RawMessage
}

// IntOrStringFromInt returns an integer-form value.
func IntOrStringFromInt(i int64) IntOrString {
	return IntOrString{text: strconv.FormatInt(i, 10)}
}

// IntOrStringFromString returns a string-form value.
func IntOrStringFromString(s string) IntOrString {
	return IntOrString{text: s, isString: true}
}

// IsString reports whether the value was written as a JSON string.
func (v IntOrString) IsString() bool { return v.isString }

// String returns the value's text: the string as written, or the integer's
// decimal digits ("0" for the zero value).
func (v IntOrString) String() string {
	if !v.isString && v.text == "" && v.invalid == nil {
		return "0"
	}
	return v.text
}

// Rat parses the value as an exact decimal number ("0.1", "50", 100).
func (v IntOrString) Rat() (*big.Rat, error) {
	if v.invalid != nil {
		return nil, fmt.Errorf("%s is neither an integer nor a string", v.invalid)
	}
	text := v.String()
	r, ok := new(big.Rat).SetString(text)
	if !ok || text == "" {
		return nil, fmt.Errorf("%q is not a number", text)
	}
	return r, nil
}

// UnmarshalJSON accepts a JSON integer or string; anything else is kept for
// ValidateIntOrString to report.
func (v *IntOrString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil // as encoding/json does for values it cannot set to nil
	}
	*v = IntOrString{}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("decoding int-or-string: %w", err)
		}
		v.text, v.isString = s, true
		return nil
	}
	if _, err := strconv.ParseInt(string(data), 10, 64); err == nil {
		v.text = string(data)
		return nil
	}
	v.invalid = append(json.RawMessage(nil), data...)
	return nil
}

// MarshalJSON writes the value in the form it was written in.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	switch {
	case v.invalid != nil:
		return v.invalid, nil
	case v.isString:
		return json.Marshal(v.text)
	default:
		return []byte(v.String()), nil
	}
}

// ValidateIntOrString records a violation when v (if set) was neither a JSON
// integer nor a string, or when its text is not a number. It returns the
// parsed number, or nil when v is unset or invalid.
func ValidateIntOrString(errs *validate.Errors, path validate.Path, v *IntOrString) *big.Rat {
	if v == nil {
		return nil
	}
	if v.invalid != nil {
		errs.Add(path, "must be an integer or a string holding a decimal number")
		return nil
	}
	r, err := v.Rat()
	if err != nil {
		errs.Add(path, "string is not a number")
		return nil
	}
	return r
}

// ValidatePercentage records a violation when v (if set) is not a number
// between 0 and 100 inclusive; with allowZero false, 0 is rejected too.
func ValidatePercentage(errs *validate.Errors, path validate.Path, v *IntOrString, allowZero bool) {
	r := ValidateIntOrString(errs, path, v)
	if r == nil {
		return
	}
	switch {
	case r.Sign() < 0 || r.Cmp(big.NewRat(100, 1)) > 0:
		errs.Add(path, "must be between 0 and 100")
	case !allowZero && r.Sign() == 0:
		errs.Add(path, "must be greater than 0")
	}
}
