package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// maxCheckBody bounds how much of a check's response body is read.
const maxCheckBody = 64 << 10

// hcUserAgent is the User-Agent of HTTP health checks, Envoy's (some
// applications recognize it).
const hcUserAgent = "Envoy/HC"

// dialCheck connects to addr for a health check over the cluster's
// transport: TLS with the cluster's certificate and verification (mTLS)
// when the cluster has a TLS transport socket, offering alpn unless the
// cluster's TLS context names protocols. Health check connections are not
// counted in the cluster's connection stats nor held to its circuit
// breakers, as in Envoy.
func (c *Cluster) dialCheck(ctx context.Context, addr string, alpn []string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || c.tls == nil {
		return conn, err
	}
	tc := c.tls
	if len(alpn) > 0 {
		tc = tc.WithDefaultALPN(alpn)
	}
	out, err := tc.Handshake(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return out, nil
}

// checkTransport is the HTTP transport of a cluster's HTTP (HTTP/1.1) or
// gRPC (HTTP/2: h2c, or h2 over TLS) health checks; without
// reuse_connection each check has a connection of its own.
func (c *Cluster) checkTransport(h2, noReuse bool) *http.Transport {
	t := &http.Transport{
		Proxy:               nil,
		DisableCompression:  true,
		DisableKeepAlives:   noReuse,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     0,
		Protocols:           new(http.Protocols),
	}
	alpn := []string{"http/1.1"}
	if h2 {
		alpn = []string{"h2"}
	}
	switch {
	case c.tls != nil:
		t.DialTLSContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.dialCheck(ctx, addr, alpn)
		}
		if h2 {
			t.Protocols.SetHTTP2(true)
		} else {
			t.Protocols.SetHTTP1(true)
		}
	case h2:
		t.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return c.dialCheck(ctx, addr, nil) }
		t.Protocols.SetUnencryptedHTTP2(true)
	default:
		t.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) { return c.dialCheck(ctx, addr, nil) }
		t.Protocols.SetHTTP1(true)
	}
	return t
}

// checkHTTP sends GET path to addr: healthy when the status is in
// expected_statuses. The Host header is the cluster's name, as in Envoy.
func (hc *healthChecker) checkHTTP(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hc.c.Scheme()+"://"+addr+hc.cfg.path, nil)
	if err != nil {
		return err
	}
	req.Host = hc.c.name
	req.Header.Set("User-Agent", hcUserAgent)
	for _, hv := range hc.cfg.headers {
		addHeader(req, hv)
	}
	resp, err := hc.http.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckBody))
	_ = resp.Body.Close()
	for _, r := range hc.cfg.expected {
		if int64(resp.StatusCode) >= r[0] && int64(resp.StatusCode) < r[1] {
			return nil
		}
	}
	return fmt.Errorf("%w: status %d", errCheckFailed, resp.StatusCode)
}

// addHeader applies one request_headers_to_add entry by its append_action.
func addHeader(req *http.Request, hv *corev3.HeaderValueOption) {
	k, v := hv.GetHeader().GetKey(), hv.GetHeader().GetValue()
	if strings.EqualFold(k, "host") || k == ":authority" {
		req.Host = v
		return
	}
	present := req.Header.Get(k) != ""
	action := hv.GetAppendAction()
	if a := hv.GetAppend(); a != nil && !a.GetValue() {
		action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	}
	switch action {
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if !present {
			req.Header.Set(k, v)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		req.Header.Set(k, v)
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if present {
			req.Header.Set(k, v)
		}
	default:
		req.Header.Add(k, v)
	}
}

// checkGRPC calls grpc.health.v1.Health/Check with service_name: healthy
// when the answer is SERVING. The :authority is authority, else the
// cluster's name.
func (hc *healthChecker) checkGRPC(ctx context.Context, addr string) error {
	msg, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: hc.cfg.service})
	if err != nil {
		return err
	}
	body := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:5], uint32(len(msg)))
	copy(body[5:], msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hc.c.Scheme()+"://"+addr+"/grpc.health.v1.Health/Check", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = hc.c.name
	if hc.cfg.authority != "" {
		req.Host = hc.cfg.authority
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	req.Header.Set("User-Agent", hcUserAgent)
	resp, err := hc.http.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: HTTP status %d", errCheckFailed, resp.StatusCode)
	}
	status := resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status") // trailers-only answer
	}
	if status != "0" {
		return fmt.Errorf("%w: grpc-status %q %s", errCheckFailed, status, resp.Trailer.Get("Grpc-Message"))
	}
	if len(data) < 5 || data[0] != 0 || int(binary.BigEndian.Uint32(data[1:5])) != len(data)-5 {
		return fmt.Errorf("%w: malformed gRPC response", errCheckFailed)
	}
	var out healthpb.HealthCheckResponse
	if err := proto.Unmarshal(data[5:], &out); err != nil {
		return fmt.Errorf("%w: %w", errCheckFailed, err)
	}
	if out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%w: %s", errCheckFailed, out.GetStatus())
	}
	return nil
}

// tcpCheckConn is a TCP check connection kept between checks
// (reuse_connection with a payload).
type tcpCheckConn struct{ net.Conn }

func (s *hcState) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// checkTCP connects to the host (reusing the connection of the previous
// check when reuse_connection is set and there is a payload), sends the
// send bytes and reads until every receive block was found, in order,
// not necessarily adjacent (Envoy's fuzzy match). Without receive blocks
// a connection is success.
func (hc *healthChecker) checkTCP(ctx context.Context, h *host) error {
	s := &h.hc
	conn := s.conn
	s.conn = nil
	if conn == nil {
		raw, err := hc.c.dialCheck(ctx, h.addr, nil)
		if err != nil {
			return err
		}
		conn = &tcpCheckConn{raw}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err := hc.exchangeTCP(conn)
	if !stop() || err != nil || !hc.cfg.reuse || len(hc.cfg.send) == 0 && len(hc.cfg.receive) == 0 {
		_ = conn.Close()
	} else {
		s.conn = conn
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("health check timed out: %w", err)
	}
	return err
}

func (hc *healthChecker) exchangeTCP(conn net.Conn) error {
	if len(hc.cfg.send) > 0 {
		if _, err := conn.Write(hc.cfg.send); err != nil {
			return err
		}
	}
	if len(hc.cfg.receive) == 0 {
		return nil
	}
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		if matchBlocks(buf, hc.cfg.receive) {
			return nil
		}
		if len(buf) > maxCheckBody {
			return fmt.Errorf("%w: no match in %d bytes", errCheckFailed, len(buf))
		}
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if matchBlocks(buf, hc.cfg.receive) {
				return nil
			}
			if err == io.EOF {
				return fmt.Errorf("%w: closed before the expected answer", errCheckFailed)
			}
			return err
		}
	}
}

// matchBlocks reports whether every block occurs in buf, in order.
func matchBlocks(buf []byte, blocks [][]byte) bool {
	for _, b := range blocks {
		i := bytes.Index(buf, b)
		if i < 0 {
			return false
		}
		buf = buf[i+len(b):]
	}
	return true
}
