// Package bootstrap is the client side of trellis-dp's start-up: it loads
// the Dataplane file (YAML or JSON, with --dataplane-var placeholders),
// posts it to the control plane's /bootstrap endpoint and decodes the Envoy
// bootstrap the control plane answers with.
package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// placeholder matches "{{ name }}" (spaces optional), as kuma-dp's
// --dataplane-var templates do.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}`)

// ErrMissingVar is wrapped by Render when a placeholder has no value.
var ErrMissingVar = errors.New("no --dataplane-var for a placeholder")

// Dataplane is a loaded Dataplane file.
type Dataplane struct {
	// JSON is the resource, placeholders substituted and overrides applied.
	JSON []byte
	// Name and Mesh are the resource's (or the overrides').
	Name, Mesh string
}

// ParseVars turns repeated "key=value" flag values into a map. The value
// may contain '='; the key must not be empty.
func ParseVars(kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--dataplane-var %q: want key=value", kv)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// Render replaces every {{ key }} in text with vars[key]. A placeholder
// without a value is an error naming every such key.
func Render(text []byte, vars map[string]string) ([]byte, error) {
	var missing []string
	out := placeholder.ReplaceAllFunc(text, func(m []byte) []byte {
		key := string(placeholder.FindSubmatch(m)[1])
		v, ok := vars[key]
		if !ok {
			if !slices.Contains(missing, key) {
				missing = append(missing, key)
			}
			return m
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingVar, strings.Join(missing, ", "))
	}
	return out, nil
}

// LoadDataplane reads a Dataplane file (YAML or JSON), substitutes vars and
// returns it as JSON. A non-empty name or mesh overrides the file's.
func LoadDataplane(path string, vars map[string]string, name, mesh string) (*Dataplane, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Dataplane file: %w", err)
	}
	dp, err := ParseDataplane(raw, vars, name, mesh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return dp, nil
}

// ParseDataplane is LoadDataplane on the file's content.
func ParseDataplane(raw []byte, vars map[string]string, name, mesh string) (*Dataplane, error) {
	rendered, err := Render(raw, vars)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(rendered)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil || obj == nil {
		return nil, errors.New("the Dataplane must be a YAML or JSON object")
	}
	if name != "" {
		obj["name"] = name
	}
	if mesh != "" {
		obj["mesh"] = mesh
	}
	if name != "" || mesh != "" {
		if js, err = json.Marshal(obj); err != nil {
			return nil, fmt.Errorf("encoding the Dataplane: %w", err)
		}
	}
	dp := &Dataplane{JSON: js}
	dp.Name, _ = obj["name"].(string)
	dp.Mesh, _ = obj["mesh"].(string)
	return dp, nil
}
