package tcpproxy

import (
	"fmt"
	"net"
	"time"

	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// connLogger is the access_log of a tcp_proxy: one entry per connection,
// when it closes. A nil connLogger logs nothing.
type connLogger struct {
	logs *accesslog.Logger
}

func buildAccessLog(cfg *tcpproxyv3.TcpProxy, resolve Resolver, reg stats.Registry) (*connLogger, error) {
	if len(cfg.GetAccessLog()) == 0 {
		return nil, nil
	}
	logs, err := accesslog.Build(cfg.GetAccessLog(), func(name string) (string, error) {
		c := resolve(name)
		if c == nil {
			return "", fmt.Errorf("cluster %q not found", name)
		}
		return c.Pick()
	}, reg)
	if err != nil {
		return nil, err
	}
	return &connLogger{logs: logs}, nil
}

// connRecord is what is known of a connection; its methods do nothing on
// nil.
type connRecord struct {
	l *connLogger
	e format.Entry
}

// begin starts the record of a connection to cluster.
func (l *connLogger) begin(down net.Conn, cluster string) *connRecord {
	if l == nil {
		return nil
	}
	r := &connRecord{l: l}
	r.e.Start = time.Now()
	r.e.UpstreamCluster = cluster
	r.e.DownstreamRemote = down.RemoteAddr().String()
	r.e.DownstreamLocal = down.LocalAddr().String()
	return r
}

func (r *connRecord) flag(f string) {
	if r != nil {
		r.e.Flags = f
	}
}

func (r *connRecord) connected(up net.Conn) {
	if r != nil {
		r.e.UpstreamHost = up.RemoteAddr().String()
		r.e.UpstreamLocal = up.LocalAddr().String()
	}
}

func (r *connRecord) bytes(received, sent uint64) {
	if r != nil {
		r.e.BytesReceived, r.e.BytesSent = int64(received), int64(sent)
	}
}

// finish logs the connection.
func (r *connRecord) finish() {
	if r == nil {
		return
	}
	r.e.Duration = time.Since(r.e.Start)
	r.l.logs.Log(&r.e)
}
