package runtime_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// load sends traffic in the background and counts what fails.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       chan struct{}
	done       chan struct{}
}

func startLoad(t *testing.T, op func() error) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			if err := op(); err != nil {
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstErr == nil {
					l.firstErr = err
				}
				l.mu.Unlock()
			} else {
				l.ok.Add(1)
			}
		}
	}()
	t.Cleanup(l.finish)
	return l
}

// progress waits until n more operations succeeded.
func (l *load) progress(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d ok, %d failed (first error: %v)", l.ok.Load(), l.failed.Load(), l.err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *load) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstErr
}

func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// check stops the load and fails the test on any failure.
func (l *load) check(t *testing.T, name string) {
	t.Helper()
	l.finish()
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%s: %d of %d operations failed; first: %v", name, n, n+l.ok.Load(), l.err())
	}
	t.Logf("%s: %d operations, none failed", name, l.ok.Load())
}

// httpLoad sends GETs to url over one keep-alive connection.
func httpLoad(t *testing.T, url, want string) *load {
	hc := h1Client(t)
	return startLoad(t, func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || string(b) != want {
			return fmt.Errorf("got %d %q", resp.StatusCode, b)
		}
		return nil
	})
}

// tcpLoad opens a new connection per operation (a new mTLS handshake
// between the sidecars each time) and echoes a line.
func tcpLoad(t *testing.T, addr, prefix string) *load {
	return startLoad(t, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != prefix+"ping\n" {
			return fmt.Errorf("echo %q", line)
		}
		return nil
	})
}

// recorder is a TLS echo server that records the serial of every client
// certificate it is shown.
type recorder struct {
	addr    string
	mu      sync.Mutex
	serials []*big.Int
}

func newRecorder(t *testing.T, id *identity) *recorder {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{id.tls},
		ClientAuth:   tls.RequireAnyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &recorder{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				r.mu.Lock()
				r.serials = append(r.serials, tc.ConnectionState().PeerCertificates[0].SerialNumber)
				r.mu.Unlock()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return r
}

func (r *recorder) last() *big.Int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.serials) == 0 {
		return nil
	}
	return r.serials[len(r.serials)-1]
}

// merge returns one Config holding the resources of all.
func merge(cfgs ...*xdsconfig.Config) *xdsconfig.Config {
	out := xdsconfig.New()
	for _, c := range cfgs {
		for k, v := range c.Listeners {
			out.Listeners[k] = v
		}
		for k, v := range c.Routes {
			out.Routes[k] = v
		}
		for k, v := range c.Clusters {
			out.Clusters[k] = v
		}
		for k, v := range c.Endpoints {
			out.Endpoints[k] = v
		}
		for k, v := range c.Secrets {
			out.Secrets[k] = v
		}
	}
	return out
}

func TestCertificateRotationKeepsConnections(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1.1", true: "http2"}[http2], func(t *testing.T) { testRotation(t, http2) })
	}
}

func testRotation(t *testing.T, http2 bool) {
	ca := newCA(t, "ca-1")
	in := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	serverCfg := in.config(t, ca.pem(), ca.issue(t, spiffe("backend")))
	server := sidecar(t, serverCfg)

	// The client sidecar: HTTP to backend, and TCP to a recorder that
	// shows which certificate new upstream connections present.
	rec := newRecorder(t, ca.issue(t, spiffe("recorder")))
	out := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: in.addr, http: true, http2: http2}
	recOut := outbound{self: "web", dest: "recorder", addr: freeAddr(t), upstream: rec.addr}
	webID := ca.issue(t, spiffe("web"))
	clientCfg := merge(out.config(t, ca.pem(), webID), recOut.config(t, nil, nil))
	client := sidecar(t, clientCfg)

	throughRecorder := func() {
		t.Helper()
		c := dialEcho(t, recOut.addr)
		if got := roundTrip(t, c, bufio.NewReader(c), "x"); got != "x" {
			t.Fatalf("recorder echo = %q", got)
		}
		c.Close()
	}
	throughRecorder()
	if got := rec.last(); got.Cmp(webID.serial) != 0 {
		t.Fatalf("client presented serial %v, want %v", got, webID.serial)
	}

	l := httpLoad(t, "http://"+out.addr+"/", "app")
	l.progress(t, 20)

	// The server sidecar gets a new identity (an SDS-only update).
	backend2 := ca.issue(t, spiffe("backend"))
	apply(t, server, withSecrets(serverCfg, identitySecret("backend", backend2)))
	l.progress(t, 20)
	serial, err := probeTLS(t, in.addr, ca.issue(t, spiffe("probe")))
	if err != nil || serial.Cmp(backend2.serial) != 0 {
		t.Fatalf("new connection: server serial %v (%v), want %v", serial, err, backend2.serial)
	}

	// The client sidecar gets a new identity.
	web2 := ca.issue(t, spiffe("web"))
	apply(t, client, withSecrets(clientCfg, identitySecret("web", web2)))
	l.progress(t, 20)
	throughRecorder()
	if got := rec.last(); got.Cmp(web2.serial) != 0 {
		t.Fatalf("new upstream connection presented serial %v, want %v", got, web2.serial)
	}
	l.check(t, "keep-alive client")

	// Neither the pool of the client sidecar nor the listener of the
	// server sidecar lost its connection.
	if got := stat(t, client.Stats(), "cluster.backend.upstream_cx_total"); got != 1 {
		t.Errorf("client upstream_cx_total = %d, want 1", got)
	}
	if got := stat(t, server.Stats(), "http.inbound_backend.downstream_cx_total"); got != 2 {
		t.Errorf("server http downstream_cx_total = %d, want 2 (the kept connection and the probe)", got)
	}
}

func TestCASwitchWithoutFailures(t *testing.T) {
	ca1, ca2 := newCA(t, "ca-1"), newCA(t, "ca-2")
	httpIn := inbound{service: "backend", addr: freeAddr(t), app: idBackend(t, "app"), http: true, mode: strict}
	tcpIn := inbound{service: "db", addr: freeAddr(t), app: echoServer(t, "db:"), mode: strict}
	serverCfg := merge(httpIn.config(t, ca1.pem(), ca1.issue(t, spiffe("backend"))), tcpIn.config(t, nil, ca1.issue(t, spiffe("db"))))
	server := sidecar(t, serverCfg)

	httpOut := outbound{self: "web", dest: "backend", addr: freeAddr(t), upstream: httpIn.addr, http: true}
	tcpOut := outbound{self: "web", dest: "db", addr: freeAddr(t), upstream: tcpIn.addr}
	clientCfg := merge(httpOut.config(t, ca1.pem(), ca1.issue(t, spiffe("web"))), tcpOut.config(t, nil, nil))
	client := sidecar(t, clientCfg)

	hl := httpLoad(t, "http://"+httpOut.addr+"/", "app")
	tl := tcpLoad(t, tcpOut.addr, "db:")
	step := func(name string) {
		t.Helper()
		hl.progress(t, 10)
		tl.progress(t, 10)
		t.Logf("%s: ok", name)
	}
	step("start")

	// 1. Both trust both CAs.
	both := bundle(ca1, ca2)
	serverCfg = withSecrets(serverCfg, caSecret(both))
	clientCfg = withSecrets(clientCfg, caSecret(both))
	apply(t, server, serverCfg)
	apply(t, client, clientCfg)
	step("bundle with both CAs")

	// 2. The server's identities come from the new CA, then the client's.
	serverCfg = withSecrets(serverCfg, identitySecret("backend", ca2.issue(t, spiffe("backend"))), identitySecret("db", ca2.issue(t, spiffe("db"))))
	apply(t, server, serverCfg)
	step("server identities from ca-2")
	clientCfg = withSecrets(clientCfg, identitySecret("web", ca2.issue(t, spiffe("web"))))
	apply(t, client, clientCfg)
	step("client identity from ca-2")

	// 3. The old CA is no longer trusted.
	serverCfg = withSecrets(serverCfg, caSecret(ca2.pem()))
	clientCfg = withSecrets(clientCfg, caSecret(ca2.pem()))
	apply(t, server, serverCfg)
	apply(t, client, clientCfg)
	step("bundle with ca-2 only")

	hl.check(t, "keep-alive HTTP client")
	tl.check(t, "new TCP connection per operation")

	if _, err := probeTLS(t, httpIn.addr, ca2.issue(t, spiffe("probe"))); err != nil {
		t.Fatalf("probe with a ca-2 identity: %v", err)
	}
	if _, err := probeTLS(t, httpIn.addr, ca1.issue(t, spiffe("probe"))); err == nil {
		t.Error("a ca-1 identity is still accepted after ca-1 left the bundle")
	}
	if got := stat(t, client.Stats(), "cluster.db.ssl.handshake"); got < 40 {
		t.Errorf("cluster.db.ssl.handshake = %d: the TCP load did not make new handshakes", got)
	}
	if got := stat(t, server.Stats(), "listener."+strings.ReplaceAll(tcpIn.addr, ":", "_")+".ssl.connection_error"); got != 0 {
		t.Errorf("server TCP listener ssl.connection_error = %d", got)
	}
}
