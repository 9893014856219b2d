package kds

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/version"
)

// Backoff bounds between reconnection attempts of a zone.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// ClientConfig is how a zone control plane reaches the global one.
type ClientConfig struct {
	// Zone is this zone's name.
	Zone string
	// GlobalAddress is grpcs://host:port (or host:port).
	GlobalAddress string
	// CACertFile is the PEM CA (or self-signed certificate) the global's
	// KDS certificate must chain to; empty means the system roots.
	CACertFile string
	// TokenFile holds the zone token; it is read on every connection.
	TokenFile string
	// InstanceID is this control plane's instance ID.
	InstanceID string
}

// Client is the zone's end of KDS: it keeps a connection to the global,
// receiving the global's resources and sending the zone's, and reconnects
// with backoff when it drops. The zone's store stays as it is while
// disconnected, so the zone keeps serving.
type Client struct {
	cfg       ClientConfig
	st        store.Store
	reg       *resource.Registry
	log       *slog.Logger
	connected atomic.Bool
	lastErr   atomic.Value
}

// NewClient returns the KDS client of a zone over its store st.
func NewClient(cfg ClientConfig, st store.Store, reg *resource.Registry, log *slog.Logger) (*Client, error) {
	if cfg.Zone == "" {
		return nil, errors.New("multizone.zone (TRELLIS_MULTIZONE_ZONE) must name this zone")
	}
	if _, err := globalTarget(cfg.GlobalAddress); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, st: st, reg: reg, log: log}, nil
}

// Connected reports whether both streams to the global are open.
func (c *Client) Connected() bool { return c.connected.Load() }

// globalTarget turns grpcs://host:port into host:port.
func globalTarget(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("multizone.globalAddress (TRELLIS_MULTIZONE_GLOBAL_ADDRESS) is required in zone mode, e.g. grpcs://global.example:5685")
	}
	if !strings.Contains(addr, "://") {
		return addr, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("multizone.globalAddress %q: %w", addr, err)
	}
	if u.Scheme != "grpcs" {
		return "", fmt.Errorf("multizone.globalAddress %q: the scheme must be grpcs (KDS runs over TLS)", addr)
	}
	if u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("multizone.globalAddress %q: want grpcs://host:port", addr)
	}
	return u.Host, nil
}

// Run connects and syncs until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	backoff := minBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := c.session(ctx)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		c.lastErr.Store(err.Error())
		if time.Since(start) > 30*time.Second {
			backoff = minBackoff
		}
		c.log.Warn("kds: connection to the global control plane lost; the zone keeps serving from its store", "global", c.cfg.GlobalAddress, "error", err, "retryIn", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
	return nil
}

func (c *Client) dialOptions() ([]grpc.DialOption, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.CACertFile != "" {
		pemData, err := os.ReadFile(c.cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("multizone.globalCACertFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("multizone.globalCACertFile %s: no PEM certificate in it", c.cfg.CACertFile)
		}
		tlsCfg.RootCAs = pool
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}, nil
}

func (c *Client) token() (string, error) {
	if c.cfg.TokenFile == "" {
		return "", errors.New("multizone.zoneTokenFile (TRELLIS_MULTIZONE_ZONE_TOKEN_FILE) is not set: generate one on the global with `trellisctl generate zone-token --zone " + c.cfg.Zone + "`")
	}
	b, err := os.ReadFile(c.cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("multizone.zoneTokenFile: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("multizone.zoneTokenFile %s is empty", c.cfg.TokenFile)
	}
	return t, nil
}

// session runs one connection: both streams until either ends.
func (c *Client) session(ctx context.Context) error {
	target, _ := globalTarget(c.cfg.GlobalAddress)
	opts, err := c.dialOptions()
	if err != nil {
		return err
	}
	token, err := c.token()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return fmt.Errorf("dialing %s: %w", target, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx,
		MDZone, c.cfg.Zone, MDInstance, c.cfg.InstanceID, MDSession, rand.Text(), MDVersion, version.Version,
		MDAuthorization, "Bearer "+token)
	down, err := conn.NewStream(ctx, streamDesc, MethodGlobalToZone)
	if err != nil {
		return fmt.Errorf("opening GlobalToZoneSync: %w", err)
	}
	up, err := conn.NewStream(ctx, streamDesc, MethodZoneToGlobal)
	if err != nil {
		return fmt.Errorf("opening ZoneToGlobalSync: %w", err)
	}
	log := c.log.With("zone", c.cfg.Zone)
	if err := accepted(down); err != nil {
		return fmt.Errorf("the global refused GlobalToZoneSync: %w", err)
	}
	if err := accepted(up); err != nil {
		return fmt.Errorf("the global refused ZoneToGlobalSync: %w", err)
	}
	c.connected.Store(true)
	log.Info("kds: connected to the global control plane", "global", c.cfg.GlobalAddress)
	errs := make(chan error, 2)
	go func() {
		errs <- NewReceiver(c.st, GlobalToZone(c.reg, c.cfg.Zone), nil, log).Serve(ctx, clientRequests{down})
	}()
	go func() {
		errs <- NewSender(c.st, ZoneToGlobal(c.cfg.Zone), nil, log).Serve(ctx, clientResponses{up})
	}()
	err = <-errs
	cancel()
	<-errs
	if err == nil {
		err = errors.New("stream closed")
	}
	return err
}
