// Package manager runs trellis-cp's Kubernetes side: a controller-runtime
// manager with leader election through a coordination.k8s.io Lease, the
// admission webhook server (resource validation, sidecar injection, on
// every replica) and the Pod → Dataplane controller and other leader-only
// work (on the replica holding the Lease).
package manager

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/k8s/controllers"
	"github.com/trellis-mesh/trellis/internal/k8s/injector"
	k8swebhook "github.com/trellis-mesh/trellis/internal/k8s/webhook"
	trellismanager "github.com/trellis-mesh/trellis/internal/manager"
)

// Options configure the Kubernetes side.
type Options struct {
	// RestConfig reaches the API server (in-cluster, KUBECONFIG, or a test's).
	RestConfig *rest.Config
	Config     config.Kubernetes
	// Resources reads and writes the mesh resources (the Kubernetes store).
	Resources *trellismanager.Manager
	// Identity is this replica's name in the Lease (its instance ID).
	Identity string
	// CACert is the PEM of the DP server's CA, given to sidecars.
	CACert string
	// LeaderWork runs on the leader only, once elected, until it stops
	// leading (ctx ends).
	LeaderWork []func(ctx context.Context) error
	Log        *slog.Logger
}

// Manager is the running Kubernetes side.
type Manager struct {
	mgr ctrl.Manager
	// WebhookAddress is where the webhook server listens (host:port).
	WebhookAddress string
}

// New builds the manager: leader election, webhooks, the Pod controller.
func New(o Options) (*Manager, error) {
	host, portStr, err := net.SplitHostPort(o.Config.WebhookServer.Address)
	if err != nil {
		return nil, fmt.Errorf("kubernetes.webhookServer.address: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("kubernetes.webhookServer.address: port %q: %w", portStr, err)
	}
	lock, err := newLock(o)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	le := o.Config.LeaderElection
	lease, renew, retry := time.Duration(le.LeaseDuration), time.Duration(le.RenewDeadline), time.Duration(le.RetryPeriod)
	cert := o.Config.WebhookServer
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Scheme:                              scheme,
		Logger:                              logr.FromSlogHandler(o.Log.Handler()),
		Metrics:                             metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:              "0",
		LeaderElection:                      true,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       true,
		LeaseDuration:                       &lease,
		RenewDeadline:                       &renew,
		RetryPeriod:                         &retry,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: host, Port: port,
			CertDir:  filepath.Dir(cert.TLSCertFile),
			CertName: filepath.Base(cert.TLSCertFile), KeyName: filepath.Base(cert.TLSKeyFile),
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	inj, err := injectorConfig(o)
	if err != nil {
		return nil, err
	}
	ws := mgr.GetWebhookServer()
	ws.Register(k8swebhook.ValidatePath, &webhook.Admission{Handler: &k8swebhook.Validator{Registry: o.Resources.Registry()}})
	ws.Register(k8swebhook.InjectPath, &webhook.Admission{Handler: &k8swebhook.Injector{
		Config: inj, Reader: mgr.GetAPIReader(), Log: o.Log.With("component", "injector")}})
	pods := &controllers.PodReconciler{Client: mgr.GetClient(), Writer: mgr.GetClient(), Resources: o.Resources,
		Log: o.Log.With("component", "pod-controller")}
	if err := pods.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("registering the Pod controller: %w", err)
	}
	for _, w := range o.LeaderWork {
		if err := mgr.Add(leaderOnly(w)); err != nil {
			return nil, err
		}
	}
	return &Manager{mgr: mgr, WebhookAddress: o.Config.WebhookServer.Address}, nil
}

// Start runs everything until ctx ends; the Lease is released on the way out.
func (m *Manager) Start(ctx context.Context) error { return m.mgr.Start(ctx) }

// Elected is closed once this replica leads.
func (m *Manager) Elected() <-chan struct{} { return m.mgr.Elected() }

// newLock is the Lease lock, holding this replica's identity.
func newLock(o Options) (resourcelock.Interface, error) {
	cs, err := kubernetes.NewForConfig(o.RestConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	le := o.Config.LeaderElection
	return resourcelock.New(resourcelock.LeasesResourceLock, o.Config.SystemNamespace, le.LeaseName,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: o.Identity})
}

// injectorConfig turns the settings into the injector's Config; the native
// sidecar needs an API server of Kubernetes 1.29 or later.
func injectorConfig(o Options) (injector.Config, error) {
	c := o.Config.Injector
	native := false
	if c.NativeSidecar {
		ok, err := atLeast(o.RestConfig, "1.29.0")
		if err != nil {
			return injector.Config{}, err
		}
		native = ok
		if !ok {
			o.Log.Warn("kubernetes.injector.nativeSidecar needs Kubernetes 1.29 or later: injecting a regular sidecar container")
		}
	}
	return injector.Config{
		Image: c.Image, InitImage: c.InitImage, CPAddress: c.CPAddress, CACert: o.CACert,
		UID: int64(c.UID), AdminPort: c.AdminPort,
		CPURequest: c.CPURequest, MemoryRequest: c.MemoryRequest, CPULimit: c.CPULimit, MemoryLimit: c.MemoryLimit,
		NativeSidecar:       native,
		RedirectPortInbound: c.RedirectPortInbound, RedirectPortOutbound: c.RedirectPortOutbound,
		DNSPort: c.BuiltinDNSPort, BuiltinDNS: c.BuiltinDNS, ApplicationProbeProxyPort: c.ApplicationProbeProxyPort,
	}, nil
}

// atLeast reports whether the API server's version is at least min.
func atLeast(cfg *rest.Config, min string) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, fmt.Errorf("discovery client: %w", err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return false, fmt.Errorf("reading the API server's version: %w", err)
	}
	v, err := version.ParseGeneric(info.GitVersion)
	if err != nil {
		return false, fmt.Errorf("the API server's version %q: %w", info.GitVersion, err)
	}
	return v.AtLeast(version.MustParseGeneric(min)), nil
}

// leaderOnly is a runnable the manager starts once elected.
type leaderOnly func(ctx context.Context) error

func (f leaderOnly) Start(ctx context.Context) error { return f(ctx) }

// NeedLeaderElection: only the leader runs it.
func (f leaderOnly) NeedLeaderElection() bool { return true }
