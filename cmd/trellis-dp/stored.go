package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
)

// storedDataplane is the bootstrap's Dataplane when no --dataplane-file is
// given, as kuma-dp runs on Kubernetes: the Dataplane --name of mesh --mesh
// is already in the control plane's store (the Pod controller writes it),
// so the request carries only its name and mesh. Only a sidecar works this
// way.
func storedDataplane(o *runOptions) (*bootstrap.Dataplane, error) {
	switch {
	case o.proxyType != "" && o.proxyType != proxyTypeDataplane:
		return nil, fmt.Errorf("--proxy-type %s needs --dataplane-file", o.proxyType)
	case o.name == "":
		return nil, errors.New("--name: required without --dataplane-file (the Dataplane the control plane stores)")
	case o.mesh == "":
		return nil, errors.New("--mesh: required without --dataplane-file (the mesh of the stored Dataplane)")
	case len(o.dataplaneVars) > 0:
		return nil, errors.New("--dataplane-var: only with --dataplane-file")
	}
	return &bootstrap.Dataplane{Name: o.name, Mesh: o.mesh}, nil
}

// retryStored reports whether a bootstrap refusal for a stored Dataplane
// may go away: 404, the control plane has not written the Dataplane yet
// (the Pod has no IP or no Service selects it so far).
func retryStored(o *runOptions, err error) bool {
	var refused *bootstrap.Error
	return o.dataplaneFile == "" && errors.As(err, &refused) && refused.Status == http.StatusNotFound
}
