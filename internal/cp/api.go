package cp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tlscert"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// Names of the generated API certificate in DataDir/certs.
const (
	apiCertFileName = "api-server.crt"
	apiKeyFileName  = "api-server.key"
)

// apiListeners are the REST API's sockets: plain HTTP (loopback by
// default) and HTTPS.
type apiListeners struct {
	http, https net.Listener
	tls         *tls.Config
	// certFile is the HTTPS certificate, generated or the operator's.
	certFile string
}

func (l *apiListeners) Close() {
	l.http.Close()
	l.https.Close()
}

// openAPIListeners loads (or generates) the HTTPS certificate and opens
// both API sockets.
func openAPIListeners(cfg config.Config, log *slog.Logger) (*apiListeners, error) {
	certFile, keyFile := apiCertFiles(cfg)
	if cfg.APIServer.HTTPS.TLSCertFile == "" {
		if err := tlscert.Ensure(certFile, keyFile, "trellis-cp api server", nil); err != nil {
			return nil, fmt.Errorf("generating the API certificate: %w", err)
		}
	}
	tlsCfg, err := apiserver.LoadTLSConfig(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("apiServer.https.tlsCertFile: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.APIServer.HTTP.Address)
	if err != nil {
		return nil, fmt.Errorf("apiServer.http.address: %w", err)
	}
	httpsLn, err := net.Listen("tcp", cfg.APIServer.HTTPS.Address)
	if err != nil {
		httpLn.Close()
		return nil, fmt.Errorf("apiServer.https.address: %w", err)
	}
	if ap, err := netip.ParseAddrPort(httpLn.Addr().String()); err == nil && !ap.Addr().Unmap().IsLoopback() {
		log.Warn("the plain-HTTP API listens beyond loopback: remote clients need a token, and it travels unencrypted; prefer the HTTPS address for them",
			"http", httpLn.Addr().String(), "https", httpsLn.Addr().String())
	}
	return &apiListeners{http: httpLn, https: httpsLn, tls: tlsCfg, certFile: certFile}, nil
}

// apiCertFiles returns the HTTPS certificate and key: the operator's, or
// the generated ones in DataDir/certs.
func apiCertFiles(cfg config.Config) (certFile, keyFile string) {
	if cfg.APIServer.HTTPS.TLSCertFile != "" {
		return cfg.APIServer.HTTPS.TLSCertFile, cfg.APIServer.HTTPS.TLSKeyFile
	}
	dir := filepath.Join(cfg.DataDir, "certs")
	return filepath.Join(dir, apiCertFileName), filepath.Join(dir, apiKeyFileName)
}

// setupUserTokens makes sure a user-token signing key exists and that the
// data dir holds an admin token an operator on this machine can read.
func setupUserTokens(ctx context.Context, st store.Store, cfg config.Config, log *slog.Logger) (*tokens.UserTokens, error) {
	ut := tokens.NewUserTokens(st)
	if err := ut.EnsureUserSigningKey(ctx); err != nil {
		return nil, fmt.Errorf("creating the user-token signing key: %w", err)
	}
	path := filepath.Join(cfg.DataDir, tokens.AdminUserTokenFileName)
	created, err := ut.EnsureAdminUserTokenFile(ctx, path)
	if err != nil {
		return nil, err
	}
	if created {
		certFile, _ := apiCertFiles(cfg)
		log.Info("wrote an admin user token for remote API access (readable only by this user); "+
			"use it with: trellisctl config control-planes add --name NAME --address https://HOST:PORT "+
			"--ca-cert-file "+certFile+" --auth-type tokens --auth-conf token=$(cat "+path+")",
			"path", path, "httpsAddress", cfg.APIServer.HTTPS.Address)
	} else {
		log.Info("admin user token for remote API access", "path", path)
	}
	return ut, nil
}
