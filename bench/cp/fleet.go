package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
)

// Ports of the simulated Dataplanes (they never listen).
const (
	inboundPort       = 8080
	servicePort       = 18080
	firstOutboundPort = 20000
)

// fleet is N simulated proxies over a few or many gRPC connections.
type fleet struct {
	o       options
	n       int
	mesh    string
	addr    string
	creds   credentials.TransportCredentials
	proxies []*proxy
	conns   []*grpc.ClientConn
	refs    refCache

	watch      atomic.Pointer[watch]
	configured atomic.Int64
	// responses counts the responses the proxies ACKed.
	responses atomic.Int64
	allReady  chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	errs   []error
}

func newFleet(o options, n int, mesh, addr, caFile string) (*fleet, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the DP server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	f := &fleet{o: o, n: n, mesh: mesh, addr: addr, allReady: make(chan struct{}),
		creds: credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})}
	for i := range n {
		node, err := f.node(i)
		if err != nil {
			return nil, err
		}
		f.proxies = append(f.proxies, newProxy(f, i, node, o.mode == "delta"))
	}
	conns := o.conns
	if conns <= 0 || conns > n {
		conns = n
	}
	f.conns = make([]*grpc.ClientConn, conns)
	return f, nil
}

// serviceOf returns the service of proxy i.
func (f *fleet) serviceOf(i int) int { return i % f.o.services }

// outboundsOf returns the services proxy i calls: the next ones after its
// own, wrapping around.
func (f *fleet) outboundsOf(i int) []int {
	s := f.serviceOf(i)
	k := min(f.o.outbounds, f.o.services)
	out := make([]int, 0, k)
	for j := range k {
		out = append(out, (s+1+j)%f.o.services)
	}
	return out
}

func serviceName(s int) string { return fmt.Sprintf("svc-%d", s) }

func (f *fleet) proxyName(i int) string {
	return fmt.Sprintf("%s-%d", serviceName(f.serviceOf(i)), i)
}

// proxyAddress gives every proxy its own address in 10.0.0.0/8.
func proxyAddress(i int) string {
	i++
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
}

// dataplane is proxy i's Dataplane: one HTTP inbound of its service, and
// one outbound per service it calls.
func (f *fleet) dataplane(i int) map[string]any {
	var outbound []any
	for j, s := range f.outboundsOf(i) {
		outbound = append(outbound, map[string]any{"port": firstOutboundPort + j, "tags": map[string]any{"kuma.io/service": serviceName(s)}})
	}
	return map[string]any{
		"type": "Dataplane", "mesh": f.mesh, "name": f.proxyName(i),
		"networking": map[string]any{
			"address": proxyAddress(i),
			"inbound": []any{map[string]any{"port": inboundPort, "servicePort": servicePort,
				"tags": map[string]any{"kuma.io/service": serviceName(f.serviceOf(i)), "kuma.io/protocol": "http"}}},
			"outbound": outbound,
		},
	}
}

// node is proxy i's xDS node, as trellis-dp's bootstrap makes it.
func (f *fleet) node(i int) (*corev3.Node, error) {
	dp, err := json.Marshal(f.dataplane(i))
	if err != nil {
		return nil, err
	}
	meta, err := structpb.NewStruct(map[string]any{
		"dataplane.resource":      string(dp),
		"dataplane.admin.address": "127.0.0.1:9901",
		"version.trellisDp":       "bench",
	})
	if err != nil {
		return nil, err
	}
	return &corev3.Node{Id: f.mesh + "." + f.proxyName(i), Cluster: serviceName(f.serviceOf(i)), Metadata: meta}, nil
}

// connect starts every proxy (at most o.dialConcurrency TLS handshakes at
// a time) and returns at once; allReady closes when all have their first
// full config.
func (f *fleet) connect(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	sem := make(chan struct{}, max(f.o.dialConcurrency, 1))
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for i, p := range f.proxies {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			conn, fresh, err := f.conn(i)
			if err != nil {
				<-sem
				f.fail(err)
				continue
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				if fresh {
					waitReady(ctx, conn)
				}
				<-sem
				if err := p.run(ctx, conn); err != nil && ctx.Err() == nil {
					f.fail(fmt.Errorf("proxy %s: %w", p.node.GetId(), err))
				}
			}()
		}
	}()
}

// conn returns proxy i's connection, creating it when it is the first
// proxy on it.
func (f *fleet) conn(i int) (*grpc.ClientConn, bool, error) {
	k := i % len(f.conns)
	if c := f.conns[k]; c != nil {
		return c, false, nil
	}
	// The flow-control windows trellis-dp sets (xdsclient): fixed, so
	// no bandwidth-estimation PING follows each response.
	c, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(f.creds),
		grpc.WithInitialWindowSize(xdsclient.FlowControlWindow), grpc.WithInitialConnWindowSize(xdsclient.FlowControlWindow))
	if err != nil {
		return nil, false, fmt.Errorf("connecting to the DP server: %w", err)
	}
	c.Connect()
	f.conns[k] = c
	return c, true, nil
}

func waitReady(ctx context.Context, c *grpc.ClientConn) {
	for {
		s := c.GetState()
		if s == connectivity.Ready || !c.WaitForStateChange(ctx, s) {
			return
		}
	}
}

func (f *fleet) noteConfigured() {
	if f.configured.Add(1) == int64(f.n) {
		close(f.allReady)
	}
}

func (f *fleet) fail(err error) {
	f.errMu.Lock()
	f.errs = append(f.errs, err)
	f.errMu.Unlock()
}

// failures returns how many proxies failed and the first few errors.
func (f *fleet) failures() (int, error) {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return len(f.errs), errors.Join(f.errs[:min(len(f.errs), 3)]...)
}

// startWatch publishes a change to wait for, affecting the proxies for
// which affected returns true.
func (f *fleet) startWatch(typeURL, marker string, affected func(i int) bool) *watch {
	w := &watch{typeURL: typeURL, marker: []byte(marker), at: make([]atomic.Int64, f.n), done: make(chan struct{})}
	n := 0
	for i, p := range f.proxies {
		a := affected(i)
		p.affected.Store(a)
		if a {
			n++
		}
	}
	w.left.Store(int64(n))
	if n == 0 {
		close(w.done)
	}
	f.watch.Store(w)
	return w
}

// close ends every stream and connection.
func (f *fleet) close() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, c := range f.conns {
		if c != nil {
			c.Close()
		}
	}
}

// firstConfigTimes returns, per proxy, the time from opening its stream to
// its first full config (proxies without one are left out).
func (f *fleet) firstConfigTimes() (per []time.Duration, last time.Time) {
	for _, p := range f.proxies {
		at := p.configured.Load()
		if at == 0 {
			continue
		}
		t := time.Unix(0, at)
		per = append(per, t.Sub(p.started))
		if t.After(last) {
			last = t
		}
	}
	return per, last
}

// firstResponseTimes returns, per proxy, the time from opening its stream
// to its first response.
func (f *fleet) firstResponseTimes() []time.Duration {
	var out []time.Duration
	for _, p := range f.proxies {
		if at := p.firstResp.Load(); at != 0 {
			out = append(out, time.Unix(0, at).Sub(p.started))
		}
	}
	return out
}

// convergence returns, per affected proxy, the time from t0 to its ACK of
// the watched change.
func (w *watch) convergence(t0 time.Time) []time.Duration {
	var out []time.Duration
	for i := range w.at {
		if at := w.at[i].Load(); at != 0 {
			out = append(out, time.Unix(0, at).Sub(t0))
		}
	}
	return out
}
