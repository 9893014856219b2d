package runtime_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// tlsEchoServer terminates TLS with cert and answers each line with
// "<name>:<line>", reporting the SNI it saw as "<name>:sni=<sni>" first.
func tlsEchoServer(t *testing.T, name string, cert tls.Certificate) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				_, _ = io.WriteString(c, name+":sni="+tc.ConnectionState().ServerName+"\n")
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					_, _ = io.WriteString(c, name+":"+sc.Text()+"\n")
				}
			}()
		}
	}()
	return l.Addr().String()
}

// sniListener is a zone-ingress-like listener: the TLS inspector and a
// tcp_proxy chain per server name.
func sniListener(t *testing.T, addr string, inspector bool, chains map[string]string) *listenerv3.Listener {
	l := &listenerv3.Listener{Name: "inbound:" + addr, Address: socketAddress(addr), TrafficDirection: corev3.TrafficDirection_INBOUND}
	if inspector {
		l.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &tlsinspectorv3.TlsInspector{})},
		}}
	}
	for _, sni := range []string{"a{mesh=default}", "b{mesh=default}"} {
		cluster, ok := chains[sni]
		if !ok {
			continue
		}
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{sni}, TransportProtocol: "tls"},
			Filters: []*listenerv3.Filter{{
				Name: "envoy.filters.network.tcp_proxy",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpproxyv3.TcpProxy{
					StatPrefix: cluster, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
				})},
			}},
		})
	}
	return l
}

// A zone ingress's listener routes TLS connections by their SNI without
// terminating them: the backend completes the handshake with the client
// and sees the client's SNI; an unknown SNI matches no chain.
func TestServerNameRouting(t *testing.T) {
	ca := newCA(t, "root")
	cert := ca.issue(t, "spiffe://default/x").tls
	a, b := tlsEchoServer(t, "a", cert), tlsEchoServer(t, "b", cert)
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(
		sniListener(t, addr, true, map[string]string{"a{mesh=default}": "default:a", "b{mesh=default}": "default:b"}),
		edsCluster(t, "default:a", false), cla("default:a", a),
		edsCluster(t, "default:b", false), cla("default:b", b),
	))
	for _, c := range []struct{ sni, want string }{{"a{mesh=default}", "a"}, {"b{mesh=default}", "b"}} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: c.sni, InsecureSkipVerify: true}) //nolint:gosec // the test checks routing only
		if err != nil {
			t.Fatalf("SNI %s: %v", c.sni, err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		first, _ := r.ReadString('\n')
		if want := c.want + ":sni=" + c.sni + "\n"; first != want {
			t.Fatalf("SNI %s: backend said %q, want %q", c.sni, first, want)
		}
		if _, err := io.WriteString(conn, "hello\n"); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.ReadString('\n'); got != c.want+":hello\n" {
			t.Fatalf("SNI %s: echo %q", c.sni, got)
		}
		conn.Close()
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: "c{mesh=default}", InsecureSkipVerify: true}) //nolint:gosec // routing only
	if err == nil {
		conn.Close()
		t.Fatal("a connection with an unknown SNI was forwarded")
	}
}

// server_names without the TLS inspector is refused with the field named.
func TestServerNamesNeedTheInspector(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	err := rt.Apply(t.Context(), configOf(sniListener(t, addr, false, map[string]string{"a{mesh=default}": "default:a"}), edsCluster(t, "default:a", false), cla("default:a", "127.0.0.1:1")))
	if err == nil || !strings.Contains(err.Error(), "server_names needs the envoy.filters.listener.tls_inspector listener filter") {
		t.Fatalf("Apply = %v, want the missing inspector named", err)
	}
}
