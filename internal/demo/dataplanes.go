package demo

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The Dataplane files the demo writes. They are templates: trellis-dp
// fills the {{ ... }} placeholders from its --dataplane-var flags, so one
// backend file serves every backend instance, as it would on real hosts.
const (
	backendDataplane = `# A backend instance's sidecar, written by "trellisctl demo".
# trellis-dp fills the placeholders from its --dataplane-var flags.
type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: 127.0.0.1
  inbound:
  - port: {{ port }}           # the sidecar listens here
    servicePort: {{ appPort }} # and passes requests to the app here
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
`
	frontendDataplane = `# The frontend's sidecar, written by "trellisctl demo".
# trellis-dp fills the placeholders from its --dataplane-var flags.
type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: 127.0.0.1
  inbound:
  - port: {{ port }}           # the sidecar listens here
    servicePort: {{ appPort }} # and passes requests to the app here
    tags:
      kuma.io/service: frontend
      kuma.io/protocol: http
  outbound:
  - port: {{ backendPort }}    # the app reaches the backend service at 127.0.0.1:this port
    tags:
      kuma.io/service: backend
`
)

// sidecar is one app instance's proxy: its Dataplane and its ports.
type sidecar struct {
	// name is the Dataplane's name: frontend-1, backend-1..N.
	name string
	// file is the Dataplane template; vars fill it.
	file string
	vars map[string]string
	// tokenFile holds the dataplane token of the sidecar's service.
	tokenFile string
	// inboundPort is where the sidecar accepts traffic for its app;
	// adminPort serves /ready.
	inboundPort, adminPort int
	proc                   *child
}

// writeDataplaneFiles writes the two templates into dir and returns their
// paths.
func writeDataplaneFiles(dir string) (frontend, backend string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", dir, err)
	}
	frontend = filepath.Join(dir, "frontend.yaml")
	backend = filepath.Join(dir, "backend.yaml")
	for path, text := range map[string]string{frontend: frontendDataplane, backend: backendDataplane} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return "", "", fmt.Errorf("writing the Dataplane file: %w", err)
		}
	}
	return frontend, backend, nil
}

// args are trellis-dp's command line for this sidecar.
func (s *sidecar) args(cpPort int, caCert string) []string {
	args := []string{"run",
		"--cp-address", "https://" + hostPort(cpPort),
		"--dataplane-file", s.file,
		"--ca-cert-file", caCert,
		"--admin-addr", hostPort(s.adminPort),
		// Stop quickly: a browser's idle keep-alive connection must not
		// hold up Ctrl-C for the default drain time.
		"--drain-timeout", "1s",
	}
	if s.tokenFile != "" {
		args = append(args, "--dataplane-token-file", s.tokenFile)
	}
	for _, k := range slices.Sorted(maps.Keys(s.vars)) {
		args = append(args, "--dataplane-var", k+"="+s.vars[k])
	}
	return args
}

// portVar formats a port for --dataplane-var.
func portVar(p int) string { return strconv.Itoa(p) }
