// Package tcpproxy implements the envoy.filters.network.tcp_proxy network
// filter: each downstream connection is connected to an endpoint of the
// configured cluster (or one of the weighted clusters) and bytes are
// copied both ways. When both sides are plaintext *net.TCPConn, io.Copy
// moves the bytes with splice(2) on Linux without copying them through
// user space; TLS connections (mTLS inbound or upstream) are copied
// through a buffer.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"

	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
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
	targets []target
	total   uint32
	log     *slog.Logger

	cxTotal   *stats.Counter
	cxNoRoute *stats.Counter
	rxBytes   *stats.Counter
	txBytes   *stats.Counter
}

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
	sc := stats.NewScope(reg, "tcp."+cfg.GetStatPrefix())
	p.cxTotal = sc.Counter("downstream_cx_total")
	p.cxNoRoute = sc.Counter("downstream_cx_no_route")
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
	if t.cluster == nil {
		p.cxNoRoute.Inc()
		p.log.Debug("tcp_proxy: cluster not found", "cluster", t.name)
		return
	}
	up, err := t.cluster.DialTCP(context.Background())
	if err != nil {
		p.log.Debug("tcp_proxy: upstream connect failed", "cluster", t.name, "error", err)
		return
	}
	cs := t.cluster.Stats()
	defer cs.CxActive.Dec()
	defer up.Close()

	fromDownDone := make(chan int64, 1)
	go func() { fromDownDone <- pipe(up, down) }()
	fromUp := uint64(pipe(down, up))
	fromDown := uint64(<-fromDownDone)
	p.rxBytes.Add(fromDown)
	p.txBytes.Add(fromUp)
	cs.CxTxBytes.Add(fromDown)
	cs.CxRxBytes.Add(fromUp)
}

// closeWriter is a connection that can be half-closed: *net.TCPConn (FIN)
// and *tls.Conn (close_notify).
type closeWriter interface {
	CloseWrite() error
}

// pipe copies src to dst. At EOF it half-closes dst so the peer sees the
// end of the stream while the other direction goes on; on an error (reset,
// closed by drain) it closes both so that the other direction ends too.
func pipe(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return n
	}
	cw, ok := dst.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		src.Close()
	}
	return n
}
