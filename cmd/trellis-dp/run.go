package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/admin"
	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
	"github.com/trellis-mesh/trellis/internal/dataplane/metrics"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tracing"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
	"github.com/trellis-mesh/trellis/internal/version"
)

// defaultCPPort is the control plane's DP server port (DESIGN.md §2).
const defaultCPPort = "5678"

// runOptions are the flags of "trellis-dp run".
type runOptions struct {
	cpAddress        string
	dataplaneFile    string
	dataplaneVars    []string
	tokenFile        string
	caCertFile       string
	adminAddr        string
	name, mesh       string
	xdsMode          string
	logLevel         string
	drainTimeout     time.Duration
	bootstrapTimeout time.Duration
	enablePprof      bool
	dnsPort          uint32
	probeProxyPort   int // probeproxy.go; -1: default
	// proxyType is dataplane (a sidecar), ingress or egress (zoneproxy.go).
	proxyType string
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the proxy",
		Long: `Run the proxy: load the Dataplane file, fetch the bootstrap from the control
plane, serve the admin API, and run the listeners and clusters the control
plane sends over ADS until SIGINT, SIGTERM or POST /quitquitquit; then drain
and exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log, err := newLogger(o.logLevel)
			if err != nil {
				return err
			}
			return run(ctx, o, log, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cpAddress, "cp-address", "", "URL of the control plane's DP server, e.g. https://cp.example:5678")
	f.StringVar(&o.dataplaneFile, "dataplane-file", "", "Dataplane resource (YAML or JSON), may hold {{ var }} placeholders; without it the control plane uses its stored Dataplane --name in --mesh (Kubernetes)")
	f.StringArrayVar(&o.dataplaneVars, "dataplane-var", nil, "value for a {{ key }} placeholder of the Dataplane file, key=value (repeatable)")
	f.StringVar(&o.tokenFile, "dataplane-token-file", "", "file holding the dataplane token")
	f.StringVar(&o.caCertFile, "ca-cert-file", "", "PEM CA certificate(s) that sign the control plane's TLS certificate (default: the system roots)")
	f.StringVar(&o.adminAddr, "admin-addr", admin.DefaultAddress, "address of the admin API")
	f.StringVar(&o.name, "name", "", "Dataplane name, overriding the file's")
	f.StringVar(&o.mesh, "mesh", "", "mesh, overriding the file's")
	f.StringVar(&o.xdsMode, "xds-mode", "", "xDS protocol: sotw or delta (default: what the bootstrap says)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&o.drainTimeout, "drain-timeout", runtime.DefaultDrainTimeout, "how long open connections may finish at shutdown or when their listener is removed")
	f.DurationVar(&o.bootstrapTimeout, "bootstrap-timeout", time.Minute, "how long to keep retrying the bootstrap while the control plane is unreachable")
	f.BoolVar(&o.enablePprof, "enable-pprof", false, "serve Go's runtime profiles (CPU, heap, goroutines, ...) under /debug/pprof/ on the admin address")
	f.Uint32Var(&o.dnsPort, "dns-port", defaultDNSPort, "port of the DNS server on 127.0.0.1 that answers the mesh's names, run when the Dataplane has networking.transparentProxying (0: none)")
	f.StringVar(&o.proxyType, "proxy-type", proxyTypeDataplane, "what the proxy is: dataplane (a sidecar), ingress (a zone ingress; the file holds a ZoneIngress) or egress (a zone egress; a ZoneEgress)")
	addProbeProxyFlag(f, o) // probeproxy.go
	_ = cmd.MarkFlagRequired("cp-address")
	return cmd
}

// newLogger returns a text logger on stderr at the given level.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// cpEndpoint is the parsed --cp-address.
type cpEndpoint struct {
	baseURL  string // scheme://host:port, for /bootstrap
	hostPort string // for the ADS stream
	host     string // TLS server name
}

func parseCPAddress(s string) (*cpEndpoint, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--cp-address %q: want a URL such as https://HOST:%s", s, defaultCPPort)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("--cp-address %q: the DP server speaks TLS; use https://", s)
	}
	port := u.Port()
	if port == "" {
		port = defaultCPPort
	}
	hp := net.JoinHostPort(u.Hostname(), port)
	return &cpEndpoint{baseURL: "https://" + hp + strings.TrimRight(u.Path, "/"), hostPort: hp, host: u.Hostname()}, nil
}

// run is "trellis-dp run". It returns after a graceful shutdown, which
// starts when ctx ends or on POST /quitquitquit. started, when not nil,
// receives the admin listener's address once it is serving (for tests).
func run(ctx context.Context, o *runOptions, log *slog.Logger, started chan<- string) error {
	cp, err := parseCPAddress(o.cpAddress)
	if err != nil {
		return err
	}
	var mode xdsclient.Mode
	if o.xdsMode != "" {
		if mode, err = xdsclient.ParseMode(o.xdsMode); err != nil {
			return fmt.Errorf("--xds-mode: %w", err)
		}
	}
	tlsCfg, err := cpTLSConfig(o.caCertFile, cp.host) // caenv.go
	if err != nil {
		return err
	}
	b, err := fetchBootstrap(ctx, o, cp, &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone(), Proxy: http.ProxyFromEnvironment},
		Timeout:   30 * time.Second,
	}, log)
	if err != nil {
		return err
	}
	settings, err := bootstrap.SettingsOf(b)
	if err != nil {
		return fmt.Errorf("the control plane's bootstrap: %w", err)
	}
	if o.xdsMode == "" && settings.APIType == corev3.ApiConfigSource_DELTA_GRPC {
		mode = xdsclient.Delta
	}
	node := proto.Clone(settings.Node).(*corev3.Node)
	if err := announceDNSPort(node, o.dnsPort, log); err != nil {
		return err
	}
	tracing.SetLocalService(node.GetCluster()) // the service name of client spans, as Envoy's --service-cluster
	if node.GetUserAgentName() == "" {
		node.UserAgentName = "trellis-dp"
		node.UserAgentVersionType = &corev3.Node_UserAgentVersion{UserAgentVersion: version.Version}
	}

	rt := runtime.New(log.With("component", "runtime"), runtime.WithDrainTimeout(o.drainTimeout))
	applied := newApplyNotifier(rt)
	xo := xdsclient.Options{Address: cp.hostPort, TLS: tlsCfg, Node: node, Mode: mode, Applier: applied, Logger: log}
	if o.tokenFile != "" {
		xo.Token = xdsclient.TokenFile(o.tokenFile) // re-read at each connect
	}
	client, err := xdsclient.New(xo)
	if err != nil {
		return err
	}
	quit := make(chan struct{})
	rt.StatsStore().AddCollector(client)
	adm := admin.New(admin.Options{
		Config:     client,
		Stats:      []admin.StatsSource{client, rt},
		Metrics:    rt.StatsStore(),
		MeshMetric: &metrics.Server{Store: rt.StatsStore(), Config: client.AcceptedConfig, Logger: log},
		Ready:      client.Ready,
		Quit:       func() { close(quit) },
		Bootstrap:  b,
		Logger:     log,

		EnableProfiling: o.enablePprof,
	})
	ln, err := net.Listen("tcp", o.adminAddr)
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	adminDone := make(chan error, 1)
	go func() { adminDone <- adm.Serve(ln) }()
	if started != nil {
		started <- ln.Addr().String()
	}

	log.Info("starting", "node", node.GetId(), "cp", cp.hostPort, "xds_mode", mode.String(), "admin", ln.Addr().String())
	xdsCtx, stopXDS := context.WithCancel(context.Background())
	xdsDone := make(chan struct{})
	go func() {
		defer close(xdsDone)
		_ = client.Run(xdsCtx)
	}()
	go releasePages(xdsCtx, applied.applied, log)
	if _, err := startProbeProxy(xdsCtx, o, log); err != nil { // probeproxy.go
		log.Error("not serving probes", "error", err)
	}
	startMetricsSink(xdsCtx, settings, cp.hostPort, tlsCfg, xo.Token, node, rt, log)

	select {
	case <-ctx.Done():
		log.Info("signal received, shutting down")
	case <-quit:
	case err := <-adminDone:
		log.Error("admin server failed, shutting down", "error", err)
	}
	return shutdown(adm, stopXDS, xdsDone, rt, o.drainTimeout, log)
}

// shutdown drains the proxy: /ready turns 503, the xDS stream closes (the
// config stays as it is), the listeners stop accepting and their open
// connections get up to the drain timeout, then the admin server stops.
func shutdown(adm *admin.Server, stopXDS func(), xdsDone <-chan struct{}, rt *runtime.Runtime, drain time.Duration, log *slog.Logger) error {
	adm.SetDraining()
	stopXDS()
	<-xdsDone
	ctx, cancel := context.WithTimeout(context.Background(), drain+time.Second)
	defer cancel()
	var errs []error
	if err := rt.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("draining: %w", err))
	}
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if err := adm.Shutdown(actx); err != nil {
		errs = append(errs, err)
	}
	log.Info("stopped")
	return errors.Join(errs...)
}

// fetchBootstrap loads the Dataplane and posts it to the control plane,
// retrying with backoff while the control plane is unreachable or failing
// (5xx), up to --bootstrap-timeout. A refusal (4xx) is returned at once.
func fetchBootstrap(ctx context.Context, o *runOptions, cp *cpEndpoint, hc *http.Client, log *slog.Logger) (*bootstrapv3.Bootstrap, error) {
	vars, err := bootstrap.ParseVars(o.dataplaneVars)
	if err != nil {
		return nil, err
	}
	dp, proxyType := &bootstrap.Dataplane{}, proxyTypeDataplane
	if o.dataplaneFile == "" {
		if dp, err = storedDataplane(o); err != nil { // stored.go
			return nil, err
		}
	} else {
		if dp, err = bootstrap.LoadDataplane(o.dataplaneFile, vars, o.name, o.mesh); err != nil {
			return nil, err
		}
		if dp.JSON, err = announceAdminPort(dp.JSON, o.adminAddr, log); err != nil {
			return nil, err
		}
		if proxyType, err = zoneProxyResource(dp, o.proxyType); err != nil { // zoneproxy.go
			return nil, err
		}
	}
	var token string
	if o.tokenFile != "" {
		raw, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--dataplane-token-file: %w", err)
		}
		token = strings.TrimSpace(string(raw))
	}
	req := &bootstrap.Request{
		Mesh: dp.Mesh, Name: dp.Name, ProxyType: proxyType,
		DataplaneResource: string(dp.JSON), DataplaneToken: token,
		AdminAddress: o.adminAddr, XDSMode: o.xdsMode,
		Version: bootstrap.Version{TrellisDp: bootstrap.BuildVersion{Version: version.Version}},
	}
	deadline := time.Now().Add(o.bootstrapTimeout)
	delay := 250 * time.Millisecond
	for {
		b, err := bootstrap.Fetch(ctx, hc, cp.baseURL, req)
		var refused *bootstrap.Error
		if errors.As(err, &refused) && refused.Status == http.StatusUnauthorized && o.tokenFile == "" {
			return nil, fmt.Errorf("%w\n(the control plane requires a dataplane token: get one with `trellisctl generate dataplane-token` and pass it with --dataplane-token-file)", err)
		}
		if err == nil || !(bootstrap.Retryable(err) || retryStored(o, err)) || time.Now().Add(delay).After(deadline) {
			return b, err
		}
		log.Warn("bootstrap failed, retrying", "error", err, "after", delay)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bootstrap: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
