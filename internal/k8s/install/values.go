// Package install renders the Kubernetes manifests of a Trellis control
// plane: what `trellisctl install control-plane` and `trellisctl install
// crds` print. It starts from the Helm chart's values.yaml
// (deploy/helm/trellis) and builds the same objects the chart's templates
// render, so both install paths agree (a test renders the chart and
// compares).
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	chart "github.com/trellis-mesh/trellis/deploy/helm/trellis"
)

// ErrInvalidValue reports a bad --set, flag or values entry; the message
// names the key.
var ErrInvalidValue = errors.New("invalid value")

// Values mirrors deploy/helm/trellis/values.yaml.
type Values struct {
	Namespace    NamespaceValues    `json:"namespace"`
	ControlPlane ControlPlaneValues `json:"controlPlane"`
	DataPlane    DataPlaneValues    `json:"dataPlane"`
}

// NamespaceValues: whether the Namespace object is rendered.
type NamespaceValues struct {
	Create bool `json:"create"`
}

// Image names a container image; an empty Tag means the chart's appVersion.
type Image struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	PullPolicy string `json:"pullPolicy,omitempty"`
}

// ControlPlaneValues configures the trellis-cp Deployment.
type ControlPlaneValues struct {
	Image                 Image     `json:"image"`
	Replicas              int       `json:"replicas"`
	LogLevel              string    `json:"logLevel"`
	Resources             Resources `json:"resources"`
	InjectorFailurePolicy string    `json:"injectorFailurePolicy"`
	TLS                   TLSValues `json:"tls"`
}

// Resources are a container's requests and limits (Kubernetes quantities,
// kept as given: a number stays a number, as helm's toYaml keeps it).
type Resources struct {
	Requests map[string]any `json:"requests"`
	Limits   map[string]any `json:"limits"`
}

// TLSValues carry the webhook and DP server certificate (PEM). All empty:
// generated at install time.
type TLSValues struct {
	CACert string `json:"caCert"`
	Cert   string `json:"cert"`
	Key    string `json:"key"`
}

// DataPlaneValues name the images the injector puts into Pods.
type DataPlaneValues struct {
	Image     Image `json:"image"`
	InitImage Image `json:"initImage"`
}

// DefaultValues returns the chart's values.yaml as a generic tree.
func DefaultValues() (map[string]any, error) {
	data, err := fs.ReadFile(chart.Files, "values.yaml")
	if err != nil {
		return nil, fmt.Errorf("reading the chart's values.yaml: %w", err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parsing the chart's values.yaml: %w", err)
	}
	return m, nil
}

// AppVersion is the chart's appVersion: the default image tag.
func AppVersion() (string, error) {
	data, err := fs.ReadFile(chart.Files, "Chart.yaml")
	if err != nil {
		return "", fmt.Errorf("reading the chart's Chart.yaml: %w", err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", fmt.Errorf("parsing the chart's Chart.yaml: %w", err)
	}
	return c.AppVersion, nil
}

// Set applies one Helm-style `key.path=value` to the tree m. Values are
// typed as helm --set types them: true/false, integers, null; anything
// else is a string.
func Set(m map[string]any, assignment string) error {
	key, raw, ok := strings.Cut(assignment, "=")
	if !ok || key == "" {
		return fmt.Errorf("%w: --set %q: want key.path=value", ErrInvalidValue, assignment)
	}
	if err := SetValue(m, key, typed(raw)); err != nil {
		return fmt.Errorf("--set %q: %w", assignment, err)
	}
	return nil
}

// SetValue sets the value at the dotted key path in m, creating maps on
// the way.
func SetValue(m map[string]any, key string, value any) error {
	parts := strings.Split(key, ".")
	cur := m
	for i, p := range parts {
		if p == "" {
			return fmt.Errorf("%w: %q: empty element in the key", ErrInvalidValue, key)
		}
		if i == len(parts)-1 {
			cur[p] = value
			return nil
		}
		next, ok := cur[p].(map[string]any)
		if !ok {
			if cur[p] != nil {
				return fmt.Errorf("%w: %s is not a map", ErrInvalidValue, strings.Join(parts[:i+1], "."))
			}
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	return nil
}

func typed(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}

// Decode turns the tree into Values, refusing unknown keys and checking
// each value; errors name the key.
func Decode(m map[string]any) (Values, error) {
	data, err := yaml.Marshal(m)
	if err != nil {
		return Values{}, fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	var v Values
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		return Values{}, fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	return v, v.validate()
}

func (v Values) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidValue, key, fmt.Sprintf(format, args...)))
	}
	cp := v.ControlPlane
	if cp.Replicas < 1 {
		bad("controlPlane.replicas", "%d: must be at least 1", cp.Replicas)
	}
	for key, img := range map[string]Image{"controlPlane.image": cp.Image, "dataPlane.image": v.DataPlane.Image, "dataPlane.initImage": v.DataPlane.InitImage} {
		if img.Repository == "" {
			bad(key+".repository", "must be set")
		}
	}
	switch cp.Image.PullPolicy {
	case "Always", "IfNotPresent", "Never":
	default:
		bad("controlPlane.image.pullPolicy", "%q: must be Always, IfNotPresent or Never", cp.Image.PullPolicy)
	}
	switch cp.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("controlPlane.logLevel", "%q: must be debug, info, warn or error", cp.LogLevel)
	}
	switch cp.InjectorFailurePolicy {
	case "Fail", "Ignore":
	default:
		bad("controlPlane.injectorFailurePolicy", "%q: must be Fail or Ignore", cp.InjectorFailurePolicy)
	}
	for key, m := range map[string]map[string]any{"controlPlane.resources.requests": cp.Resources.Requests, "controlPlane.resources.limits": cp.Resources.Limits} {
		for name, q := range m {
			if _, err := resource.ParseQuantity(fmt.Sprint(q)); err != nil {
				bad(key+"."+name, "%v is not a Kubernetes quantity such as 100m or 64Mi", q)
			}
		}
	}
	t := cp.TLS
	if set := btoi(t.CACert != "") + btoi(t.Cert != "") + btoi(t.Key != ""); set != 0 && set != 3 {
		bad("controlPlane.tls", "caCert, cert and key are set together or not at all")
	}
	return errors.Join(errs...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
