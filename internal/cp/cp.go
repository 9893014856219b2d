// Package cp wires the control plane's components from its configuration
// and runs them until the context ends. cmd/trellis-cp is a thin shell
// around Run; in-process tests call Run too.
package cp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/apiserver/inspect"
	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tokens"
	"github.com/trellis-mesh/trellis/internal/version"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

// Started tells a caller where the running control plane listens.
type Started struct {
	APIAddress      string
	APIHTTPSAddress string
	DPServerAddress string
	// DiagnosticsAddress is empty when diagnostics are off.
	DiagnosticsAddress string
	// KDSAddress is the KDS server's address (global mode), else empty.
	KDSAddress string
}

// Run starts the control plane and blocks until ctx ends and everything has
// stopped. onStart, when not nil, is called once every listener is open.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, onStart func(Started)) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating the data dir %s: %w", cfg.DataDir, err)
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("opening the %s store: %w", cfg.Store.Type, err)
	}
	defer st.Close()
	log.Info("store open", "type", cfg.Store.Type)
	obs := newObservability()
	st = obs.meter(st, cfg.Store.Type)

	events, err := st.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watching the store: %w", err)
	}
	go logEvents(events, log)

	mgr := manager.New(st, kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	// A Mesh whose provided CA does not load or is no CA is refused.
	mgr.OnValidate(ca.New(mgr, log).ValidateHook())
	// A zone gets its meshes from the global.
	// On Kubernetes the leader creates it (internal/cp/kubernetes.go).
	if !cfg.Defaults.SkipMeshCreation && cfg.Mode != config.ModeZone && cfg.Environment != config.EnvKubernetes {
		if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
			return err
		}
	}
	clusterID, err := ensureClusterID(ctx, st)
	if err != nil {
		return err
	}

	userTokens, err := setupUserTokens(ctx, st, cfg, log)
	if err != nil {
		return err
	}

	instance := instanceID()
	mz, err := setupMultizone(ctx, cfg, st, mgr, instance, log)
	if err != nil {
		return err
	}
	defer mz.close()
	obs.metrics.SetInfo(instance, clusterID, version.Version)
	dps, dpLn, err := startDPServer(cfg, mgr, instance, obs, log)
	if err != nil {
		return err
	}
	kube, err := newKubernetes(cfg, mgr, instance, log)
	if err != nil {
		dpLn.Close()
		return err
	}
	apiLns, err := openAPIListeners(cfg, log)
	if err != nil {
		dpLn.Close()
		return err
	}
	diagLn, err := openDiagnostics(cfg.Diagnostics.Address)
	if err != nil {
		apiLns.Close()
		dpLn.Close()
		return err
	}
	ln := apiLns.http
	api := apiserver.New(mgr, apiserver.Info{
		Version:    version.Version,
		InstanceID: instance,
		ClusterID:  clusterID,
		Mode:       cfg.Mode,
		Zone:       cfg.Multizone.Zone.Name,
	}, func(ctx context.Context) error {
		_, err := st.List(ctx, store.Query{Kind: kinds.Mesh, Limit: 1})
		return err
	}, log)
	api.UseAuthn(apiserver.Authn{Tokens: userTokens, LocalhostIsAdmin: cfg.APIServer.Authn.LocalhostIsAdmin})
	api.Handle("POST /tokens/dataplane", api.DataplaneTokenHandler(tokens.NewDataplaneTokens(st)))
	mz.mount(api)
	ih, err := inspect.New(mgr, st, dps.ConfigDump)
	if err != nil {
		apiLns.Close()
		dpLn.Close()
		if diagLn != nil {
			diagLn.Close()
		}
		return err
	}
	ih.Register(api)
	obs.register(api, mgr)
	if cfg.DPServer.TestHooks {
		log.Warn("test hooks are on: /_testhooks/ can push configs proxies must refuse")
		api.Handle("/_testhooks/meshes/{mesh}/dataplanes/{name}/corrupt", dps.TestHookHandler())
	}
	log.Info("API server listening", "address", ln.Addr().String(), "https", apiLns.https.Addr().String(), "certificate", apiLns.certFile)
	if onStart != nil {
		started := Started{APIAddress: ln.Addr().String(), APIHTTPSAddress: apiLns.https.Addr().String(), DPServerAddress: dpLn.Addr().String()}
		if diagLn != nil {
			started.DiagnosticsAddress = diagLn.Addr().String()
		}
		started.KDSAddress = mz.address()
		onStart(started)
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	if kube != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs[5] = kube.Start(ctx) }()
	}
	wg.Add(4)
	go func() { defer wg.Done(); errs[4] = mz.run(ctx) }()
	if diagLn != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs[3] = serveDiagnostics(ctx, diagLn, log) }()
	}
	go func() { defer wg.Done(); errs[0] = dps.Serve(ctx, dpLn) }()
	go func() { defer wg.Done(); errs[1] = api.Serve(ctx, ln, time.Duration(cfg.ShutdownTimeout)) }()
	go func() {
		defer wg.Done()
		errs[2] = api.ServeTLS(ctx, apiLns.https, apiLns.tls, time.Duration(cfg.ShutdownTimeout))
	}()
	wg.Wait()
	log.Info("control plane stopped")
	return errors.Join(errs...)
}

// startDPServer prepares the data-plane server and opens its socket.
func startDPServer(cfg config.Config, mgr *manager.Manager, instance string, obs *observability, log *slog.Logger) (*server.Server, net.Listener, error) {
	certFile, keyFile := cfg.DPServer.TLSCertFile, cfg.DPServer.TLSKeyFile
	if certFile == "" {
		var err error
		certFile, keyFile, err = server.EnsureServerCert(filepath.Join(cfg.DataDir, "certs"), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("generating the DP server certificate: %w", err)
		}
	}
	vips, err := cfg.DNSServer.VIPConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("dnsServer: %w", err)
	}
	dps := server.New(server.Config{
		Address:             cfg.DPServer.Address,
		AdvertisedAddress:   cfg.DPServer.AdvertisedAddress,
		CertFile:            certFile,
		KeyFile:             keyFile,
		InstanceID:          instance,
		DeregistrationDelay: time.Duration(cfg.DPServer.DeregistrationDelay),
		SingleInstance:      cfg.Store.Type != config.StorePostgres && cfg.Store.Type != config.StoreKubernetes,
		Authn:               cfg.DPServer.Authn.Type,
		Metrics:             obs.metrics,
		ProxyStats:          obs.stats,
		StatsFlushInterval:  time.Duration(cfg.DPServer.StatsFlushInterval),
		VIPs:                vips,
		Zone:                cfg.Multizone.Zone.Name, // zone mode: the zone of local proxies and ingresses
		SyncedCA:            cfg.Mode == config.ModeZone,
	}, mgr, log)
	ln, err := dps.Listen()
	if err != nil {
		return nil, nil, err
	}
	return dps, ln, nil
}

// clusterIDKind is a store-only record kind (not served by the API) that
// holds the cluster ID all instances sharing a store report.
const clusterIDKind = "ControlPlaneConfig"

func ensureClusterID(ctx context.Context, st store.Store) (string, error) {
	key := store.Key{Kind: clusterIDKind, Name: "cluster-id"}
	for range 3 {
		rec, err := st.Get(ctx, key)
		if err == nil {
			var v struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(rec.Spec, &v); err != nil {
				return "", fmt.Errorf("reading the stored cluster ID: %w", err)
			}
			return v.ID, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("reading the cluster ID: %w", err)
		}
		spec, _ := json.Marshal(map[string]string{"id": randomID()})
		err = st.Create(ctx, &store.Record{Kind: key.Kind, Name: key.Name, Spec: spec})
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return "", fmt.Errorf("storing the cluster ID: %w", err)
		}
	}
	return "", errors.New("could not read or create the cluster ID")
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", hex.EncodeToString(b[0:4]), hex.EncodeToString(b[4:6]), hex.EncodeToString(b[6:8]), hex.EncodeToString(b[8:10]), hex.EncodeToString(b[10:16]))
}

func instanceID() string {
	host, _ := os.Hostname()
	return host + "-" + randomID()[:8]
}

// logEvents logs every change event the store delivers, at debug level.
// Later stages (the xDS pipeline) consume the same stream.
func logEvents(events <-chan store.Event, log *slog.Logger) {
	for ev := range events {
		log.Debug("store event", "op", ev.Op, "kind", ev.Kind, "mesh", ev.Mesh, "name", ev.Name, "version", ev.Version)
	}
}
