// Package meshdefaults creates what every new mesh gets, as Kuma 2.14 does:
// a dataplane-token signing key, and the default timeout, retry and circuit
// breaker policies unless the mesh's skipCreatingInitialPolicies says
// otherwise. It also creates the `default` mesh on first start.
package meshdefaults

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/trellis-mesh/trellis/api/policy/meshcircuitbreaker"
	"github.com/trellis-mesh/trellis/api/policy/meshretry"
	"github.com/trellis-mesh/trellis/api/policy/meshtimeout"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// DefaultMesh is the mesh created on first start.
const DefaultMesh = "default"

// SigningKeyName is the Secret holding a mesh's dataplane-token signing key
// (serial 1), named as Kuma names it.
func SigningKeyName(mesh string) string { return "dataplane-token-signing-key-" + mesh + "-1" }

// signingKeyBits is the RSA key size of dataplane-token signing keys.
const signingKeyBits = 2048

// Hook returns the create hook that fills a new mesh with its defaults.
func Hook(mgr *manager.Manager, log *slog.Logger) manager.CreateHook {
	return func(ctx context.Context, res *resource.Resource) error {
		if res.Desc.Kind != kinds.Mesh {
			return nil
		}
		return Ensure(ctx, mgr, res, log)
	}
}

// Ensure creates the signing key and default policies of a mesh where they
// are missing. It is idempotent and safe to run from several control-plane
// instances at once.
func Ensure(ctx context.Context, mgr *manager.Manager, meshRes *resource.Resource, log *slog.Logger) error {
	mesh := meshRes.Meta.Name
	if err := ensureSigningKey(ctx, mgr, mesh); err != nil {
		return fmt.Errorf("mesh %q: creating the dataplane-token signing key: %w", mesh, err)
	}
	skip, err := skippedPolicies(meshRes)
	if err != nil {
		return err
	}
	for _, p := range defaultPolicies(mesh) {
		if slices.Contains(skip, "*") || slices.Contains(skip, p.kind) {
			log.Info("skipping default policy", "mesh", mesh, "kind", p.kind, "name", p.name)
			continue
		}
		spec, err := json.Marshal(p.spec)
		if err != nil {
			return err
		}
		res, err := decode(mgr.Registry(), p.kind, mesh, p.name, string(spec))
		if err != nil {
			return fmt.Errorf("mesh %q: default %s %q is invalid: %w", mesh, p.kind, p.name, err)
		}
		res.Meta.Labels = map[string]string{"kuma.io/mesh": mesh, "kuma.io/origin": "zone"}
		if err := createIfMissing(ctx, mgr, res); err != nil {
			return fmt.Errorf("mesh %q: creating default %s %q: %w", mesh, p.kind, p.name, err)
		}
		log.Info("default policy ready", "mesh", mesh, "kind", p.kind, "name", p.name)
	}
	return nil
}

// EnsureDefaultMesh creates the `default` mesh if it does not exist yet.
func EnsureDefaultMesh(ctx context.Context, mgr *manager.Manager) error {
	res, err := decode(mgr.Registry(), kinds.Mesh, "", DefaultMesh, "{}")
	if err != nil {
		return err
	}
	err = createIfMissing(ctx, mgr, res)
	if err != nil {
		return fmt.Errorf("creating the default mesh: %w", err)
	}
	return nil
}

func createIfMissing(ctx context.Context, mgr *manager.Manager, res *resource.Resource) error {
	_, err := mgr.Get(ctx, res.Desc, res.Meta.Mesh, res.Meta.Name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	err = mgr.Create(ctx, res)
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil // another instance was first
	}
	return err
}

func ensureSigningKey(ctx context.Context, mgr *manager.Manager, mesh string) error {
	d, _ := mgr.Registry().ByKind(kinds.Secret)
	if _, err := mgr.Get(ctx, d, mesh, SigningKeyName(mesh)); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, signingKeyBits)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	data, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(keyPEM)})
	res, err := decode(mgr.Registry(), kinds.Secret, mesh, SigningKeyName(mesh), string(data))
	if err != nil {
		return err
	}
	return createIfMissing(ctx, mgr, res)
}

// skippedPolicies reads skipCreatingInitialPolicies from the mesh spec.
func skippedPolicies(meshRes *resource.Resource) ([]string, error) {
	js, err := json.Marshal(meshRes.Spec)
	if err != nil {
		return nil, err
	}
	var spec struct {
		Skip []string `json:"skipCreatingInitialPolicies"`
	}
	if err := json.Unmarshal(js, &spec); err != nil {
		return nil, fmt.Errorf("reading skipCreatingInitialPolicies: %w", err)
	}
	return spec.Skip, nil
}

// decode builds a resource through the registry, so defaults are validated
// exactly like user input. body is the JSON/YAML of the spec (flat kinds:
// the fields; policies: the spec object).
func decode(reg *resource.Registry, kind, mesh, name, body string) (*resource.Resource, error) {
	d, ok := reg.ByKind(kind)
	if !ok {
		return nil, fmt.Errorf("unknown kind %s", kind)
	}
	obj, err := resource.ParseObject([]byte(body))
	if err != nil {
		return nil, err
	}
	if d.IsPolicy() {
		obj = map[string]any{"spec": obj}
	}
	obj["type"], obj["name"] = kind, name
	if mesh != "" {
		obj["mesh"] = mesh
	}
	return resource.DecodeObject(d, obj)
}

type defaultPolicy struct {
	kind, name string
	spec       resource.Spec
}

// defaultPolicies are Kuma 2.14's initial policies of a mesh, as the policy
// packages define them, sorted by kind and name.
func defaultPolicies(mesh string) []defaultPolicy {
	var out []defaultPolicy
	add := func(kind string, specs map[string]resource.Spec) {
		for _, name := range validate.SortedKeys(specs) {
			out = append(out, defaultPolicy{kind: kind, name: name, spec: specs[name]})
		}
	}
	add(kinds.MeshCircuitBreaker, asSpecs(meshcircuitbreaker.Defaults(mesh)))
	add(kinds.MeshRetry, asSpecs(meshretry.Defaults(mesh)))
	add(kinds.MeshTimeout, asSpecs(meshtimeout.Defaults(mesh)))
	return out
}

func asSpecs[S resource.Spec](m map[string]S) map[string]resource.Spec {
	out := make(map[string]resource.Spec, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
