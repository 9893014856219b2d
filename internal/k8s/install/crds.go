package install

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
)

// CRDObjects returns the kuma.io CustomResourceDefinitions generated from
// the resource registry (internal/k8s/crd), sorted by name.
func CRDObjects() ([]map[string]any, error) {
	var out []map[string]any
	for i, doc := range crd.All() {
		o := map[string]any{}
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("parsing CRD %s: %w", crd.FileNames()[i], err)
		}
		out = append(out, o)
	}
	return out, nil
}
