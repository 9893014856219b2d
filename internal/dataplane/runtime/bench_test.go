package runtime_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
)

// BenchmarkHTTP1 compares a 1 KiB HTTP/1.1 GET sent straight to the backend
// with the same GET through an HCM listener (RDS route, EDS cluster). The
// client, the proxy and the backend run in this process, so ns/op and
// allocs/op include all three: the difference between the two is what the
// proxy adds per request.
func BenchmarkHTTP1(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	backend := httpBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "1024")
		_, _ = io.WriteString(w, payload)
	}))
	rt := newRuntime(b)
	addr := freeAddr(b)
	apply(b, rt, configOf(httpListener(b, addr, "web"), routeConfig("web", nil), edsCluster(b, "web", false), cla("web", backend)))

	for _, target := range []struct{ name, addr string }{{"direct", backend}, {"proxied", addr}} {
		url := "http://" + target.addr + "/"
		b.Run(target.name+"/serial", func(b *testing.B) {
			c := benchClient(b)
			b.ReportAllocs()
			for b.Loop() {
				fetch(b, c, url)
			}
		})
		b.Run(target.name+"/parallel", func(b *testing.B) {
			c := benchClient(b)
			b.ReportAllocs()
			b.SetParallelism(8) // 16 clients on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					fetch(b, c, url)
				}
			})
		})
	}
}

// BenchmarkMTLSPair sends 1 KiB GETs through a sidecar pair as in a mesh
// with mTLS: the client's outbound listener, HTTP/1.1 (or HTTP/2 for an
// http2 service) over mTLS to the server sidecar's STRICT inbound listener
// with an allow-all RBAC filter, then plaintext HTTP/1.1 to the backend.
// Both sidecars, the client and the backend share this process.
func BenchmarkMTLSPair(b *testing.B) {
	for _, proto := range []struct {
		name  string
		http2 bool
	}{{"http1", false}, {"http2", true}} {
		b.Run(proto.name, func(b *testing.B) {
			ca := newCA(b, "ca-1")
			in := inbound{service: "backend", addr: freeAddr(b), app: payloadBackend(b), http: true, mode: strict,
				rules: rbacRules(map[string][]*rbacv3.Principal{"allow-all": {anyPrincipal()}})}
			sidecar(b, in.config(b, ca.pem(), ca.issue(b, spiffe("backend"))))
			out := outbound{self: "web", dest: "backend", addr: freeAddr(b), upstream: in.addr, http: true, http2: proto.http2}
			sidecar(b, out.config(b, ca.pem(), ca.issue(b, spiffe("web"))))
			benchPaths(b, "http://"+out.addr+"/", benchClient)
		})
	}
}

// BenchmarkHTTP2 sends 1 KiB GETs over HTTP/2 with prior knowledge (h2c)
// through one HCM listener to an http2 (h2c) cluster, against the same
// GETs sent straight to the backend.
func BenchmarkHTTP2(b *testing.B) {
	backend := payloadBackend(b)
	rt := newRuntime(b)
	addr := freeAddr(b)
	apply(b, rt, configOf(httpListener(b, addr, "web"), routeConfig("web", nil), edsCluster(b, "web", true), cla("web", backend)))
	b.Run("direct", func(b *testing.B) { benchPaths(b, "http://"+backend+"/", h2cBenchClient) })
	b.Run("proxied", func(b *testing.B) { benchPaths(b, "http://"+addr+"/", h2cBenchClient) })
}

// payloadBackend answers every request with 1,024 bytes.
func payloadBackend(b *testing.B) string {
	payload := strings.Repeat("x", 1024)
	return httpBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "1024")
		_, _ = io.WriteString(w, payload)
	}))
}

// benchPaths runs the serial and parallel sub-benchmarks against url.
func benchPaths(b *testing.B, url string, client func(*testing.B) *http.Client) {
	b.Run("serial", func(b *testing.B) {
		c := client(b)
		b.ReportAllocs()
		for b.Loop() {
			fetch(b, c, url)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := client(b)
		b.ReportAllocs()
		b.SetParallelism(8) // 16 clients on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				fetch(b, c, url)
			}
		})
	})
}

func h2cBenchClient(b *testing.B) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{DisableCompression: true, Protocols: p}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func fetch(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 1024 {
		b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
	}
}
