package cp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/trellis-mesh/trellis/internal/config"
	k8smanager "github.com/trellis-mesh/trellis/internal/k8s/manager"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	k8sstore "github.com/trellis-mesh/trellis/internal/store/k8s"
)

// kubeConfig reaches the API server: in-cluster, or the KUBECONFIG file
// (controller-runtime's rules).
func kubeConfig() (*rest.Config, error) {
	c, err := ctrlconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes API server to talk to (in-cluster config or KUBECONFIG): %w", err)
	}
	return c, nil
}

// openKubernetesStore opens the Kubernetes store (kuma.io custom resources).
func openKubernetesStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	rc, err := kubeConfig()
	if err != nil {
		return nil, err
	}
	return k8sstore.New(ctx, k8sstore.Options{Config: rc, SystemNamespace: cfg.Kubernetes.SystemNamespace,
		Registry: kinds.Registry(), Logger: log.With("component", "k8s-store")})
}

// newKubernetes builds the Kubernetes side in environment kubernetes (nil
// otherwise): webhooks on every replica; the Pod controller and the
// default mesh creation on the leader only.
func newKubernetes(cfg config.Config, mgr *manager.Manager, instance string, log *slog.Logger) (*k8smanager.Manager, error) {
	if cfg.Environment != config.EnvKubernetes {
		return nil, nil
	}
	rc, err := kubeConfig()
	if err != nil {
		return nil, err
	}
	var leaderWork []func(context.Context) error
	if !cfg.Defaults.SkipMeshCreation && cfg.Mode != config.ModeZone {
		leaderWork = append(leaderWork, func(ctx context.Context) error {
			if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
				log.Error("creating the default mesh", "err", err)
			}
			<-ctx.Done()
			return nil
		})
	}
	return k8smanager.New(k8smanager.Options{
		RestConfig: rc, Config: cfg.Kubernetes, Resources: mgr, Identity: instance,
		CACert: injectorCACert(cfg), LeaderWork: leaderWork, Log: log.With("component", "k8s"),
	})
}

// injectorCACert is the PEM sidecars trust the DP server with: the
// configured CA file, else the DP server's certificate (self-signed when
// generated).
func injectorCACert(cfg config.Config) string {
	for _, f := range []string{cfg.Kubernetes.Injector.CACertFile, cfg.DPServer.TLSCertFile, filepath.Join(cfg.DataDir, "certs", "dp-server.crt")} {
		if f == "" {
			continue
		}
		if b, err := os.ReadFile(f); err == nil {
			return string(b)
		}
	}
	return ""
}
