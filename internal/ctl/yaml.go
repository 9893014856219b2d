package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
)

// jsonToOrderedYAML converts JSON to YAML keeping the order of object keys,
// so resources print as the API wrote them (type, mesh, name, ... first)
// rather than sorted. sigs.k8s.io/yaml's JSONToYAML sorts keys.
func jsonToOrderedYAML(js []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	out, err := yamlv2.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("converting JSON to YAML: %w", err)
	}
	return out, nil
}

// decodeOrdered reads one JSON value: objects become yaml MapSlices in
// their original key order, numbers become int64 or float64.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := yamlv2.MapSlice{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				val, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				m = append(m, yamlv2.MapItem{Key: key, Value: val})
			}
			_, err := dec.Token() // '}'
			return m, err
		case '[':
			l := []any{}
			for dec.More() {
				val, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				l = append(l, val)
			}
			_, err := dec.Token() // ']'
			return l, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(t.String(), 10, 64); err == nil {
			return u, nil
		}
		f, err := t.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	default:
		return t, nil // string, bool or nil
	}
}
