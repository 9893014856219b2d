package envtest

import (
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
)

// TrellisCRDs decodes the generated CRDs (crd.All).
func TrellisCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, b := range crd.All() {
		c := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, c); err != nil {
			return nil, fmt.Errorf("decoding generated CRD: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// InstallCRDs installs (or updates) the generated Trellis CRDs and waits
// until the API server serves them.
func InstallCRDs(cfg *rest.Config) error {
	crds, err := TrellisCRDs()
	if err != nil {
		return err
	}
	_, err = crenvtest.InstallCRDs(cfg, crenvtest.CRDInstallOptions{
		CRDs:         crds,
		MaxTime:      time.Minute,
		PollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("installing the Trellis CRDs: %w", err)
	}
	return nil
}
