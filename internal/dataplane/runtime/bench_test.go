package runtime_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
