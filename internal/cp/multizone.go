package cp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/kds"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tlscert"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// Names of the generated KDS server certificate in <dataDir>/certs.
const (
	KDSCertFileName = "kds-server.crt"
	KDSKeyFileName  = "kds-server.key"
)

// multizone is what the global and zone modes add to the control plane:
// the KDS server (global) or the KDS client (zone). Its zero value (mode
// standalone) runs nothing.
type multizone struct {
	mode     string
	ln       net.Listener
	tls      *tls.Config
	server   *kds.Server
	client   *kds.Client
	zoneToks *tokens.ZoneTokens
	log      *slog.Logger
}

// setupMultizone prepares the mode's KDS side and, in global mode, opens
// the KDS socket.
func setupMultizone(ctx context.Context, cfg config.Config, st store.Store, mgr *manager.Manager, instance string, log *slog.Logger) (*multizone, error) {
	mz := &multizone{mode: cfg.Mode, log: log}
	switch cfg.Mode {
	case config.ModeStandalone, "":
		// A standalone control plane signs the zone tokens of its zone
		// proxies with its own key (POST /tokens/zone).
		mz.zoneToks = tokens.NewZoneTokens(st)
		if err := mz.zoneToks.EnsureZoneSigningKey(ctx); err != nil {
			return nil, err
		}
	case config.ModeGlobal:
		mz.zoneToks = tokens.NewZoneTokens(st)
		if err := mz.zoneToks.EnsureZoneSigningKey(ctx); err != nil {
			return nil, err
		}
		certFile, keyFile := cfg.Multizone.Global.KDS.TLSCertFile, cfg.Multizone.Global.KDS.TLSKeyFile
		if certFile == "" {
			dir := filepath.Join(cfg.DataDir, "certs")
			certFile, keyFile = filepath.Join(dir, KDSCertFileName), filepath.Join(dir, KDSKeyFileName)
			if err := tlscert.Ensure(certFile, keyFile, "trellis-cp kds server", nil); err != nil {
				return nil, fmt.Errorf("generating the KDS server certificate: %w", err)
			}
		}
		tlsCfg, err := apiserver.LoadTLSConfig(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("multizone.global.kds: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.KDS.Address)
		if err != nil {
			return nil, fmt.Errorf("kds.address %s: %w", cfg.KDS.Address, err)
		}
		mz.ln, mz.tls = ln, tlsCfg
		mz.server = kds.NewServer(st, mgr.Registry(), mz.zoneToks, instance, log.With("component", "kds"))
		log.Info("KDS server listening", "address", ln.Addr().String(), "certificate", certFile)
	case config.ModeZone:
		c, err := kds.NewClient(kds.ClientConfig{
			Zone:          cfg.Multizone.Zone.Name,
			GlobalAddress: cfg.Multizone.Zone.GlobalAddress,
			CACertFile:    cfg.Multizone.Zone.GlobalCACertFile,
			TokenFile:     cfg.Multizone.Zone.ZoneTokenFile,
			InstanceID:    instance,
		}, st, mgr.Registry(), log.With("component", "kds"))
		if err != nil {
			return nil, err
		}
		mz.client = c
	}
	return mz, nil
}

// mount tells the API the mode and, on the global and standalone control
// planes, serves POST /tokens/zone.
func (mz *multizone) mount(api *apiserver.Server) {
	api.UseMode(mz.mode)
	if mz.zoneToks != nil {
		api.Handle("POST /tokens/zone", kds.ZoneTokenHandler(mz.zoneToks, mz.log))
	}
}

// address is the KDS server's address, empty outside global mode.
func (mz *multizone) address() string {
	if mz.ln == nil {
		return ""
	}
	return mz.ln.Addr().String()
}

// run serves KDS (global) or syncs with the global (zone) until ctx ends.
func (mz *multizone) run(ctx context.Context) error {
	switch {
	case mz.server != nil:
		return mz.server.Serve(ctx, mz.ln, mz.tls)
	case mz.client != nil:
		return mz.client.Run(ctx)
	}
	return nil
}

// close releases the KDS socket when Run fails before serving.
func (mz *multizone) close() {
	if mz.ln != nil {
		_ = mz.ln.Close()
	}
}
