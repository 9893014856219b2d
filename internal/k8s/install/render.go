package install

import (
	"bytes"
	"fmt"
	"regexp"

	"sigs.k8s.io/yaml"
)

// Options select what ControlPlane renders.
type Options struct {
	// Namespace of the control plane (default trellis-system).
	Namespace string
	// Values is the values tree (DefaultValues with --set applied); nil
	// means the chart's defaults.
	Values map[string]any
	// AppVersion is the default image tag (default: the chart's appVersion).
	AppVersion string
	// CreateNamespace renders the Namespace object.
	CreateNamespace bool
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Resolve fills the defaults of o and decodes its values. Without
// certificates in the values it generates a CA and a serving certificate.
func Resolve(o Options) (ns string, v Values, appVersion string, err error) {
	ns = o.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	if len(ns) > 63 || !dns1123Label.MatchString(ns) {
		return "", Values{}, "", fmt.Errorf("%w: --namespace %q: must be a DNS label (lowercase letters, digits, '-', at most 63)", ErrInvalidValue, ns)
	}
	tree := o.Values
	if tree == nil {
		if tree, err = DefaultValues(); err != nil {
			return "", Values{}, "", err
		}
	}
	if v, err = Decode(tree); err != nil {
		return "", Values{}, "", err
	}
	if o.CreateNamespace {
		v.Namespace.Create = true
	}
	appVersion = o.AppVersion
	if appVersion == "" {
		if appVersion, err = AppVersion(); err != nil {
			return "", Values{}, "", err
		}
	}
	if v.ControlPlane.TLS.CACert == "" {
		if v.ControlPlane.TLS, err = GenerateTLS(ns); err != nil {
			return "", Values{}, "", err
		}
	}
	return ns, v, appVersion, nil
}

// ControlPlane renders every object of a control-plane install, one YAML
// document each, in the order kubectl apply needs them (namespace, CRDs,
// RBAC, configuration, workload, webhooks).
func ControlPlane(o Options) ([]byte, error) {
	ns, v, appVersion, err := Resolve(o)
	if err != nil {
		return nil, err
	}
	crds, err := CRDObjects()
	if err != nil {
		return nil, err
	}
	return marshalAll(Objects(ns, v, appVersion, crds))
}

// CRDs renders the kuma.io CustomResourceDefinitions only.
func CRDs() ([]byte, error) {
	crds, err := CRDObjects()
	if err != nil {
		return nil, err
	}
	return marshalAll(crds)
}

// Objects builds the install's objects from resolved values (v carries the
// certificates).
func Objects(ns string, v Values, appVersion string, crds []map[string]any) []map[string]any {
	var out []map[string]any
	if v.Namespace.Create {
		out = append(out, namespaceObj(ns))
	}
	out = append(out, crds...)
	out = append(out,
		serviceAccount(ns),
		tlsSecret(ns, v.ControlPlane.TLS),
		configMap(ns, v, appVersion),
		clusterRole(),
		clusterRoleBinding(ns),
		role(ns),
		roleBinding(ns),
		service(ns),
		deployment(ns, v, appVersion),
	)
	if v.ControlPlane.Replicas > 1 {
		out = append(out, podDisruptionBudget(ns))
	}
	return append(out, validatingWebhook(ns, v.ControlPlane.TLS), mutatingWebhook(ns, v))
}

func marshalAll(objs []map[string]any) ([]byte, error) {
	var b bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encoding %v %v: %w", o["kind"], o["metadata"], err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}
