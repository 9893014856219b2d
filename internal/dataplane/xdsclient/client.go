// Package xdsclient is trellis-dp's xDS client: it keeps one aggregated
// (ADS) stream open to the control plane, state-of-the-world or
// incremental, subscribes to listeners and clusters and to the endpoints,
// routes and secrets they reference, hands every update to an
// xdsconfig.Applier as a complete Config, and ACKs or NACKs it by the
// Applier's verdict. When the stream fails, the last accepted Config keeps
// running and the client reconnects with exponential backoff.
package xdsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// Mode selects the xDS protocol variant.
type Mode int

const (
	// SotW is state-of-the-world ADS (bootstrap api_type GRPC).
	SotW Mode = iota
	// Delta is incremental ADS (bootstrap api_type DELTA_GRPC).
	Delta
)

// String returns "sotw" or "delta".
func (m Mode) String() string {
	if m == Delta {
		return "delta"
	}
	return "sotw"
}

// ParseMode accepts "sotw" or "delta" (and the bootstrap spellings GRPC and
// DELTA_GRPC).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "sotw", "GRPC":
		return SotW, nil
	case "delta", "DELTA_GRPC":
		return Delta, nil
	}
	return SotW, fmt.Errorf("unknown xDS mode %q (want sotw or delta)", s)
}

// maxRecvMsgSize bounds one xDS response; configs of large meshes exceed
// gRPC's 4 MiB default.
const maxRecvMsgSize = 64 << 20

// FlowControlWindow is the HTTP/2 flow-control window, per stream and per
// connection, of the ADS connection. Setting it turns off grpc-go's
// bandwidth estimation (a PING after each response received).
const FlowControlWindow = 8 << 20

// Options configures a Client.
type Options struct {
	// Address is the control plane's host:port.
	Address string
	// TLS configures the connection (see TLSConfig). Nil means plaintext,
	// for tests only.
	TLS *tls.Config
	// Node identifies the proxy; it comes from the bootstrap.
	Node *corev3.Node
	// Mode is SotW or Delta.
	Mode Mode
	// Applier installs every update; required.
	Applier xdsconfig.Applier
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// BackoffBase and BackoffMax bound the reconnect delay; zero means
	// DefaultBackoffBase and DefaultBackoffMax.
	BackoffBase, BackoffMax time.Duration
	// KeepaliveTime is the interval of gRPC keepalive pings on the
	// connection; zero means 5 minutes, the shortest interval gRPC servers
	// accept by default.
	KeepaliveTime time.Duration
	// InitialFetchTimeout is how long Ready waits for referenced
	// endpoints, routes and secrets; zero means
	// DefaultInitialFetchTimeout.
	InitialFetchTimeout time.Duration
	// Token, when set, returns the dataplane token sent on every stream
	// as gRPC metadata "authorization: Bearer <token>". It is called at
	// each connect, so a renewed token (TokenFile) is picked up.
	Token func() (string, error)
}

// Client is an xDS client. Run it with Run; the other methods are safe to
// call from any goroutine while it runs.
type Client struct {
	opts Options
	log  *slog.Logger

	// mu guards everything below; the run loop is the only writer.
	mu         sync.Mutex
	accepted   *xdsconfig.Config
	meta       map[string]map[string]resourceMeta
	connected  bool
	connects   uint64
	reconnects uint64
	lastError  string
	types      map[string]*typeStats
	ready      bool
	// initialAt is when clusters and listeners were first accepted; the
	// endpoints, routes and secrets they reference get the initial fetch
	// timeout from then to arrive before the client reports ready regardless.
	initialAt time.Time
}

// resourceMeta records the version of an accepted resource and when it
// last changed.
type resourceMeta struct {
	version string
	updated time.Time
}

// typeStats counts updates of one type.
type typeStats struct {
	attempts, accepted, rejected uint64
	lastRejection                string
}

// New validates opts and returns a Client that has not connected yet.
func New(opts Options) (*Client, error) {
	if opts.Address == "" {
		return nil, errors.New("xdsclient: no control plane address")
	}
	if opts.Applier == nil {
		return nil, errors.New("xdsclient: no Applier")
	}
	if opts.Node == nil || opts.Node.GetId() == "" {
		return nil, errors.New("xdsclient: the node has no id")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.InitialFetchTimeout <= 0 {
		opts.InitialFetchTimeout = DefaultInitialFetchTimeout
	}
	if opts.KeepaliveTime <= 0 {
		opts.KeepaliveTime = 5 * time.Minute
	}
	c := &Client{
		opts:     opts,
		log:      opts.Logger.With("component", "xds", "mode", opts.Mode.String()),
		accepted: xdsconfig.New(),
		meta:     map[string]map[string]resourceMeta{},
		types:    map[string]*typeStats{},
	}
	for _, t := range resourceTypes {
		c.types[t.url] = &typeStats{}
		c.meta[t.url] = map[string]resourceMeta{}
	}
	return c, nil
}

// Run connects to the control plane and processes updates until ctx ends,
// reconnecting with backoff whenever the connection or the stream fails.
// It returns nil once ctx is done.
func (c *Client) Run(ctx context.Context) error {
	bo := backoff{base: c.opts.BackoffBase, max: c.opts.BackoffMax}
	for first := true; ; first = false {
		if !first {
			c.mu.Lock()
			c.reconnects++
			c.mu.Unlock()
		}
		healthy, err := c.runConnection(ctx)
		c.setDisconnected(err)
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			bo.reset()
		}
		delay := bo.next()
		c.log.Warn("xDS stream ended; reconnecting", "error", err, "after", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// runConnection dials the control plane and runs one ADS stream on it.
// healthy reports whether the stream got at least one response, which
// resets the backoff.
func (c *Client) runConnection(ctx context.Context) (healthy bool, err error) {
	creds := grpc.WithTransportCredentials(insecureCredentials())
	if c.opts.TLS != nil {
		creds = grpc.WithTransportCredentials(credentials.NewTLS(c.opts.TLS))
	}
	// A fresh connection per attempt keeps gRPC's own reconnect backoff
	// out of the way: ours is the only one.
	conn, err := grpc.NewClient(c.opts.Address, creds,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.opts.KeepaliveTime, Timeout: 20 * time.Second}),
		grpc.WithUserAgent("trellis-dp"),
		// Fixed flow-control windows: with the defaults, grpc-go sends a
		// bandwidth-estimation PING after every response it receives,
		// which the control plane must answer (a write per response, per
		// proxy, on each configuration push).
		grpc.WithInitialWindowSize(FlowControlWindow),
		grpc.WithInitialConnWindowSize(FlowControlWindow),
	)
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", c.opts.Address, err)
	}
	defer conn.Close()
	ads := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn)
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.opts.Token != nil {
		tok, err := c.opts.Token()
		if err != nil {
			return false, err
		}
		if tok != "" {
			streamCtx = metadata.AppendToOutgoingContext(streamCtx, "authorization", "Bearer "+tok)
		}
	}
	if c.opts.Mode == Delta {
		return c.runDelta(streamCtx, ads)
	}
	return c.runSotW(streamCtx, ads)
}

// setConnected records that a stream is open.
func (c *Client) setConnected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connected = true
	c.connects++
	c.log.Info("xDS stream open", "address", c.opts.Address)
}

// setDisconnected records the end of a stream and why.
func (c *Client) setDisconnected(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connected = false
	if err != nil {
		c.lastError = err.Error()
	}
}

// DefaultInitialFetchTimeout bounds how long Ready waits, once clusters
// and listeners are in, for the endpoints, routes and secrets they
// reference (Envoy's initial_fetch_timeout default).
const DefaultInitialFetchTimeout = 15 * time.Second

// Ready reports whether the initial configuration is in: clusters and
// listeners have been accepted, and so have the endpoints, routes and
// secrets they reference (or the initial fetch timeout has passed waiting
// for them, as Envoy stops warming after its initial_fetch_timeout).
func (c *Client) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready && !c.initialAt.IsZero() && time.Since(c.initialAt) >= c.opts.InitialFetchTimeout {
		c.log.Warn("initial fetch timeout: going ready without some referenced resources",
			"missing", missingReferences(c.accepted))
		c.markReadyLocked()
	}
	return c.ready
}

// Connected reports whether an ADS stream is currently open.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// AcceptedConfig returns the last Config the Applier accepted (empty before
// the first). The caller must not modify it.
func (c *Client) AcceptedConfig() *xdsconfig.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted
}

// ResourceStatus returns the version of an accepted resource and when it
// was last updated; zero values when it is not in the accepted Config.
func (c *Client) ResourceStatus(typeURL, name string) (version string, lastUpdated time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.meta[typeURL][name]
	return m.version, m.updated
}
