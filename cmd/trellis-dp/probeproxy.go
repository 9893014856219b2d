package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/trellis-mesh/trellis/internal/dataplane/probes"
)

// envProbeProxyPort sets the probe proxy's port when the flag is not given.
const envProbeProxyPort = "TRELLIS_APPLICATION_PROBE_PROXY_PORT"

// addProbeProxyFlag registers --application-probe-proxy-port.
func addProbeProxyFlag(f *pflag.FlagSet, o *runOptions) {
	f.IntVar(&o.probeProxyPort, "application-probe-proxy-port", -1, fmt.Sprintf(
		"port of the application probe proxy the Kubernetes injector rewrites probes to (0: off; default $%s, else %d without --dataplane-file, 0 with it)",
		envProbeProxyPort, probes.DefaultPort))
}

// probeProxyPort resolves the port: the flag, else the environment, else
// the injector's default on Kubernetes (no --dataplane-file) and off on
// Universal, where several proxies may share a host.
func probeProxyPort(o *runOptions) (int, error) {
	p := o.probeProxyPort
	if p < 0 {
		if v := os.Getenv(envProbeProxyPort); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return 0, fmt.Errorf("$%s %q: want a port in [0, 65535]", envProbeProxyPort, v)
			}
			return n, nil
		}
		if o.dataplaneFile == "" {
			return probes.DefaultPort, nil
		}
		return 0, nil
	}
	if p > 65535 {
		return 0, fmt.Errorf("--application-probe-proxy-port %d: want a port in [0, 65535]", p)
	}
	return p, nil
}

// startProbeProxy listens on every interface (the kubelet probes the Pod
// IP) at the resolved port and serves the probe proxy until ctx ends. It
// returns the listener's address, or "" when the proxy is off.
func startProbeProxy(ctx context.Context, o *runOptions, log *slog.Logger) (string, error) {
	port, err := probeProxyPort(o)
	if err != nil || port == 0 {
		return "", err
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return "", fmt.Errorf("application probe proxy: %w", err)
	}
	go func() {
		if err := probes.Serve(ctx, ln, log.With("component", "probe-proxy")); err != nil {
			log.Error("application probe proxy stopped", "error", err)
		}
	}()
	return ln.Addr().String(), nil
}
