// Package tcpproxy implements the envoy.filters.network.tcp_proxy network
// filter: each downstream connection is connected to an endpoint of the
// configured cluster (or one of the weighted clusters) and bytes are
// copied both ways. When both sides are plaintext *net.TCPConn, io.Copy
// moves the bytes with splice(2) on Linux without copying them through
// user space; TLS connections (mTLS inbound or upstream) are copied
// through a buffer.
//
// idle_timeout (Envoy's default: one hour; zero disables it) closes both
// sides of a session after no bytes went either way for that long. To keep
// splice(2), activity is not stamped per read: each direction reads under
// a deadline a quarter of the timeout away and, when it passes, notes
// whether bytes moved since the last one; a session closes between the
// timeout and one and a half times it after its last byte.
// max_connect_attempts connects again (to the endpoint the load balancer
// picks next) after a failed connect.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"time"

	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Resolver returns the cluster with the given name in the configuration
// being built, or nil when it has not arrived yet.
type Resolver func(name string) *cluster.Cluster

type target struct {
	name    string
	cluster *cluster.Cluster
	weight  uint32
}

// Proxy is a built tcp_proxy filter, immutable once built.
type Proxy struct {
	targets         []target
	total           uint32
	idleTimeout     time.Duration // 0: none
	connectAttempts int
	log             *slog.Logger
	accessLog       *connLogger // nil: none (accesslog.go)

	cxTotal      *stats.Counter
	cxNoRoute    *stats.Counter
	idleTimeouts *stats.Counter
	rxBytes      *stats.Counter
	txBytes      *stats.Counter
}

// defaultIdleTimeout is Envoy's tcp_proxy idle_timeout when unset.
const defaultIdleTimeout = time.Hour

// maxConnectAttempts bounds max_connect_attempts: more attempts than that
// only delay the failure.
const maxConnectAttempts = 100

// Build checks a TcpProxy and resolves its clusters. Metrics are named
// tcp.<stat_prefix>.<metric>.
func Build(cfg *tcpproxyv3.TcpProxy, resolve Resolver, reg stats.Registry, log *slog.Logger) (*Proxy, error) {
	if cfg.GetStatPrefix() == "" {
		return nil, errors.New("stat_prefix is required")
	}
	p := &Proxy{log: log}
	switch {
	case cfg.GetWeightedClusters() != nil:
		for i, cw := range cfg.GetWeightedClusters().GetClusters() {
			if cw.GetName() == "" {
				return nil, fmt.Errorf("weighted_clusters.clusters[%d].name is required", i)
			}
			if cw.GetWeight() == 0 {
				return nil, fmt.Errorf("weighted_clusters.clusters[%d].weight must be at least 1", i)
			}
			p.targets = append(p.targets, target{name: cw.GetName(), cluster: resolve(cw.GetName()), weight: cw.GetWeight()})
			p.total += cw.GetWeight()
		}
		if len(p.targets) == 0 {
			return nil, errors.New("weighted_clusters.clusters is empty")
		}
	case cfg.GetCluster() != "":
		p.targets = []target{{name: cfg.GetCluster(), cluster: resolve(cfg.GetCluster()), weight: 1}}
		p.total = 1
	default:
		return nil, errors.New("cluster or weighted_clusters is required (the cluster name is empty)")
	}
	var err error
	if p.idleTimeout, err = xdsutil.Duration(cfg.GetIdleTimeout(), defaultIdleTimeout); err != nil {
		return nil, fmt.Errorf("idle_timeout: %w", err)
	}
	p.connectAttempts = 1
	if a := cfg.GetMaxConnectAttempts(); a != nil {
		if a.GetValue() < 1 {
			return nil, errors.New("max_connect_attempts must be at least 1")
		}
		p.connectAttempts = int(min(a.GetValue(), maxConnectAttempts))
	}
	if p.accessLog, err = buildAccessLog(cfg, resolve, reg); err != nil {
		return nil, err
	}
	sc := stats.NewScope(reg, "tcp."+cfg.GetStatPrefix())
	p.cxTotal = sc.Counter("downstream_cx_total")
	p.cxNoRoute = sc.Counter("downstream_cx_no_route")
	p.idleTimeouts = sc.Counter("idle_timeout")
	p.rxBytes = sc.Counter("downstream_cx_rx_bytes_total")
	p.txBytes = sc.Counter("downstream_cx_tx_bytes_total")
	return p, nil
}

func (p *Proxy) pick() target {
	if len(p.targets) == 1 {
		return p.targets[0]
	}
	n := rand.Uint32N(p.total)
	for _, t := range p.targets {
		if n < t.weight {
			return t
		}
		n -= t.weight
	}
	return p.targets[len(p.targets)-1]
}

// Serve proxies one downstream connection until both directions are done,
// then closes it. Closing down from elsewhere (a drain timeout) ends the
// session: the copies fail and the upstream connection is closed too.
func (p *Proxy) Serve(down net.Conn) {
	defer down.Close()
	p.cxTotal.Inc()
	t := p.pick()
	al := p.accessLog.begin(down, t.name)
	defer al.finish()
	if t.cluster == nil {
		p.cxNoRoute.Inc()
		al.flag("NC")
		p.log.Debug("tcp_proxy: cluster not found", "cluster", t.name)
		return
	}
	up, err := p.connect(t.cluster, down)
	if err != nil {
		p.log.Debug("tcp_proxy: upstream connect failed", "cluster", t.name, "error", err)
		al.flag("UF")
		return
	}
	al.connected(up)
	cs := t.cluster.Stats()
	defer cs.CxActive.Dec()
	defer up.Close()

	var idle *idler
	if p.idleTimeout > 0 {
		idle = newIdler(p.idleTimeout)
	}
	fromDownDone := make(chan int64, 1)
	go func() { fromDownDone <- pipe(up, down, idle) }()
	fromUp := uint64(pipe(down, up, idle))
	fromDown := uint64(<-fromDownDone)
	if idle != nil && idle.fired.Load() {
		p.idleTimeouts.Inc()
		p.log.Debug("tcp_proxy: idle timeout", "cluster", t.name)
	}
	al.bytes(fromDown, fromUp)
	p.rxBytes.Add(fromDown)
	p.txBytes.Add(fromUp)
	cs.CxTxBytes.Add(fromDown)
	cs.CxRxBytes.Add(fromUp)
}

// connect connects to an endpoint of c, up to max_connect_attempts times.
// Each attempt is admitted by the cluster's circuit breakers and its
// outcome (the connect, not the session) reported for outlier detection.
// An ORIGINAL_DST cluster connects to down's original destination.
func (p *Proxy) connect(c *cluster.Cluster, down net.Conn) (net.Conn, error) {
	for attempt := 1; ; attempt++ {
		req, err := c.Begin(false)
		if err != nil {
			return nil, err
		}
		var addr string
		if c.OriginalDst() {
			addr, err = cluster.OriginalDestination(down)
		} else {
			addr, err = c.PickHash(0, false)
		}
		if err != nil {
			req.Done("", cluster.Outcome{Err: err, LocalOrigin: true})
			return nil, err
		}
		start := time.Now()
		up, err := c.DialTCPAddr(context.Background(), addr)
		req.Done(addr, cluster.Outcome{Err: err, LocalOrigin: err != nil, Duration: time.Since(start)})
		if err == nil {
			return up, nil
		}
		if attempt >= p.connectAttempts {
			return nil, err
		}
		p.log.Debug("tcp_proxy: connect failed, trying again", "cluster", c.Name(), "address", addr, "attempt", attempt, "error", err)
	}
}

// idler tracks the activity of a session for its idle timeout.
type idler struct {
	timeout  time.Duration
	interval time.Duration // the read deadline of each direction
	last     atomic.Int64  // unix nanoseconds of the last activity noted
	fired    atomic.Bool
}

func newIdler(timeout time.Duration) *idler {
	d := &idler{timeout: timeout, interval: max(timeout/4, time.Millisecond)}
	d.last.Store(time.Now().UnixNano())
	return d
}

// tick is called when a direction's read deadline passed, moved telling
// whether it copied bytes since the previous one. It reports whether the
// session is idle (and marks it so).
func (d *idler) tick(moved bool) bool {
	now := time.Now().UnixNano()
	if moved {
		d.last.Store(now)
		return false
	}
	if time.Duration(now-d.last.Load()) < d.timeout {
		return false
	}
	d.fired.Store(true)
	return true
}

// closeWriter is a connection that can be half-closed: *net.TCPConn (FIN)
// and *tls.Conn (close_notify).
type closeWriter interface {
	CloseWrite() error
}

// pipe copies src to dst. At EOF it half-closes dst so the peer sees the
// end of the stream while the other direction goes on; on an error (reset,
// closed by drain, idle timeout) it closes both so that the other
// direction ends too.
func pipe(dst, src net.Conn, idle *idler) int64 {
	var total int64
	for {
		if idle != nil {
			_ = src.SetReadDeadline(time.Now().Add(idle.interval))
		}
		n, err := io.Copy(dst, src)
		total += n
		if err != nil && idle != nil && errors.Is(err, os.ErrDeadlineExceeded) && !idle.tick(n > 0) {
			continue
		}
		if err != nil {
			dst.Close()
			src.Close()
			return total
		}
		break
	}
	cw, ok := dst.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		src.Close()
	}
	return total
}
