// Package crd describes how Trellis's resource kinds appear on Kubernetes:
// one CustomResourceDefinition per kind in group kuma.io/v1alpha1, laid out
// as Kuma lays them out so that Kuma's Kubernetes manifests apply unchanged.
//
// The CRD YAML under generated/ is written by `go run ./internal/k8s/crd/gen`
// from the resource registry (internal/resource/kinds) and never edited by
// hand; TestGeneratedUpToDate fails when it is stale. All and Files give the
// generated manifests to the installer and the Helm chart.
package crd

import (
	"github.com/trellis-mesh/trellis/internal/resource"
)

// Group and Version of every Trellis CRD: Kuma's.
const (
	Group   = "kuma.io"
	Version = "v1alpha1"
	// APIVersion is the apiVersion of every custom resource.
	APIVersion = Group + "/" + Version
	// LabelMesh names the mesh of a namespaced policy (default "default").
	LabelMesh = "kuma.io/mesh"
	// DefaultMesh is the mesh of a policy without the kuma.io/mesh label.
	DefaultMesh = "default"
)

// Info is how one resource kind is served by the Kubernetes API server.
type Info struct {
	// Kind is the Kubernetes kind, equal to the Trellis kind ("MeshTimeout").
	Kind string
	// Plural is the resource name in URLs ("meshtimeouts").
	Plural string
	// Singular is the lowercase kind ("meshtimeout").
	Singular string
	// ShortNames are kubectl aliases.
	ShortNames []string
	// Namespaced is false for cluster-scoped kinds (Mesh, MeshGateway, Zone).
	Namespaced bool
	// TopLevelMesh is true for the mesh-scoped flat kinds whose objects carry
	// the mesh as a top-level "mesh" field beside "spec" (Dataplane,
	// MeshGateway); policies carry it in the kuma.io/mesh label instead.
	TopLevelMesh bool
	// Policy is true for targetRef policy kinds.
	Policy bool
}

// Name is the CRD's object name, "<plural>.kuma.io".
func (i Info) Name() string { return i.Plural + "." + Group }

// clusterScoped lists the kinds Kuma defines as cluster-scoped CRDs; every
// other kind is namespaced (policies in any namespace, Dataplanes in their
// Pod's namespace, ZoneIngress/ZoneEgress in the system namespace).
var clusterScoped = map[string]bool{
	"Mesh":        true,
	"MeshGateway": true,
	"Zone":        true,
}

// coreSecretKinds are stored the way Kuma stores them on Kubernetes: as core
// v1 Secrets (type system.kuma.io/secret and system.kuma.io/global-secret)
// in the system namespace, so they get no CRD.
var coreSecretKinds = map[string]string{
	"Secret":       "system.kuma.io/secret",
	"GlobalSecret": "system.kuma.io/global-secret",
}

// SecretType returns the core v1 Secret type a kind is stored as, and
// whether the kind is one of those (Secret, GlobalSecret).
func SecretType(kind string) (string, bool) {
	t, ok := coreSecretKinds[kind]
	return t, ok
}

// For returns how a kind is served, and false for kinds that get no CRD
// (Secret and GlobalSecret, which are core v1 Secrets).
func For(d *resource.Descriptor) (Info, bool) {
	if _, ok := coreSecretKinds[d.Kind]; ok {
		return Info{}, false
	}
	return Info{
		Kind:         d.Kind,
		Plural:       d.Path,
		Singular:     d.Singular,
		ShortNames:   append([]string(nil), d.ShortNames...),
		Namespaced:   !clusterScoped[d.Kind],
		TopLevelMesh: d.Scope == resource.ScopeMesh && !d.IsPolicy(),
		Policy:       d.IsPolicy(),
	}, true
}

// Infos returns the Info of every kind of reg that has a CRD, sorted by kind.
func Infos(reg *resource.Registry) []Info {
	var out []Info
	for _, d := range reg.All() {
		if i, ok := For(d); ok {
			out = append(out, i)
		}
	}
	return out
}
