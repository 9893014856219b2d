package runtime_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
)

// These tests drive the HTTP/1.1 fast path (httpproxy.ServeHTTP1) with raw
// bytes where the exact wire matters, and check that what it leaves to
// net/http is still answered as net/http answers it.

// proxyTo runs an outbound HTTP listener routing everything to backend
// over HTTP/1.1, with the given route timeout (nil: the default).
func proxyTo(t *testing.T, backend string, timeout *durationpb.Duration) (string, *runtime.Runtime) {
	t.Helper()
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", timeout), edsCluster(t, "web", false), cla("web", backend)))
	return addr, rt
}

// rawConn is a client connection that writes raw bytes and reads
// responses.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(t *testing.T, raw string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
}

// read reads one response (to a request with the given method) and its
// body.
func (c *rawConn) read(t *testing.T, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// closed reports whether the server closed the connection.
func (c *rawConn) closed() bool {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.br.ReadByte()
	return err == io.EOF
}

// echoBackend answers with the request's path, the headers it got and a
// digest of its body.
func echoBackend(t *testing.T) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Body-Len", strconv.FormatInt(n, 10))
		w.Header().Set("X-Body-Sha", hex.EncodeToString(h.Sum(nil)))
		for _, k := range []string{"X-Hop", "Keep-Alive", "Te", "Upgrade", "X-Forwarded-Proto", "X-Request-Id", "X-Custom"} {
			w.Header().Set("X-Seen-"+k, strings.Join(r.Header.Values(k), "|"))
		}
		_, _ = io.WriteString(w, "ok:"+r.Method)
	}))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestFastPathPipelining(t *testing.T) {
	addr, rt := proxyTo(t, echoBackend(t), nil)
	c := dialRaw(t, addr)
	// Three requests in one write, the second with a body.
	c.send(t, "GET /a HTTP/1.1\r\nHost: web\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /c HTTP/1.1\r\nHost: web\r\n\r\n")
	for _, want := range []struct{ method, path, body string }{{"GET", "/a", ""}, {"POST", "/b", "hello"}, {"GET", "/c", ""}} {
		resp, body := c.read(t, want.method)
		if resp.StatusCode != 200 || body != "ok:"+want.method || resp.Header.Get("X-Seen-Path") != want.path ||
			resp.Header.Get("X-Body-Sha") != sha(want.body) {
			t.Fatalf("%s %s: %d %q %v", want.method, want.path, resp.StatusCode, body, resp.Header)
		}
	}
	if got := rt.Stats()["http.web.downstream_cx_total"]; got != 1 {
		t.Errorf("downstream_cx_total = %d, want 1", got)
	}
	if got := rt.Stats()["cluster.web.upstream_cx_total"]; got != 1 {
		t.Errorf("upstream_cx_total = %d, want 1 (keep-alive upstream)", got)
	}
}

func TestFastPathHeaders(t *testing.T) {
	addr, _ := proxyTo(t, echoBackend(t), nil)
	c := dialRaw(t, addr)
	c.send(t, "GET /h?q=1 HTTP/1.1\r\nhost: Web.Mesh:80\r\nconnection: x-hop, keep-alive\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\n"+
		"te: trailers, deflate\r\nupgrade: websocket\r\nX-Custom: a\r\nx-custom: b\r\n\r\n")
	resp, _ := c.read(t, "GET")
	for k, want := range map[string]string{
		"X-Seen-Path": "/h?q=1", "X-Seen-Host": "Web.Mesh:80", "X-Seen-X-Hop": "", "X-Seen-Keep-Alive": "",
		"X-Seen-Te": "trailers", "X-Seen-Upgrade": "", "X-Seen-X-Forwarded-Proto": "http", "X-Seen-X-Custom": "a|b",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if id := resp.Header.Get("X-Seen-X-Request-Id"); len(id) != 36 || id[14] != '4' {
		t.Errorf("generated x-request-id = %q", id)
	}
	c.send(t, "GET / HTTP/1.1\r\nHost: web\r\nX-Request-Id: mine\r\nX-Forwarded-Proto: https\r\n\r\n")
	resp, _ = c.read(t, "GET")
	if resp.Header.Get("X-Seen-X-Request-Id") != "mine" || resp.Header.Get("X-Seen-X-Forwarded-Proto") != "https" {
		t.Errorf("client's x-request-id / x-forwarded-proto not kept: %v", resp.Header)
	}
}

func TestFastPathConnectionClose(t *testing.T) {
	addr, _ := proxyTo(t, echoBackend(t), nil)
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
	resp, body := c.read(t, "GET")
	if resp.StatusCode != 200 || body != "ok:GET" || !resp.Close {
		t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if !c.closed() {
		t.Fatal("the connection stayed open after Connection: close")
	}
}

// TestFastPathLeavesTheRestToNetHTTP sends what the fast path does not
// handle itself and expects net/http's answers.
func TestFastPathLeavesTheRestToNetHTTP(t *testing.T) {
	addr, _ := proxyTo(t, echoBackend(t), nil)
	for _, tc := range []struct {
		name, raw string
		status    int
		body      string
	}{
		{"space before colon", "GET / HTTP/1.1\r\nHost: web\r\nBad : x\r\n\r\n", 400, ""},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 1x\r\n\r\n", 400, ""},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, ""},
		{"unknown Transfer-Encoding", "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: gzip\r\n\r\n", 501, ""},
		{"control character in a value", "GET / HTTP/1.1\r\nHost: web\r\nX: a\x01b\r\n\r\n", 400, ""},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: web\r\n\r\n", 200, "ok:GET"},
		{"bare LF", "GET / HTTP/1.1\nHost: web\n\n", 200, "ok:GET"},
		{"absolute target", "GET http://web/abs HTTP/1.1\r\nHost: web\r\n\r\n", 200, "ok:GET"},
		{"Expect: 100-continue", "POST / HTTP/1.1\r\nHost: web\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, "ok:POST"},
		{"large head", "GET / HTTP/1.1\r\nHost: web\r\nX-Big: " + strings.Repeat("b", 100<<10) + "\r\n\r\n", 200, "ok:GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.send(t, tc.raw)
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == 100 {
				resp, err = http.ReadResponse(c.br, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || tc.body != "" && string(b) != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}

// TestFastPathMalformedUpstream answers 503 for responses that do not
// parse and keeps the downstream connection.
func TestFastPathMalformedUpstream(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"garbage", "HELLO\r\n\r\n"},
		{"bad status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"bad header", "HTTP/1.1 200 OK\r\nX y: z\r\n\r\n"},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := proxyTo(t, rawBackend(t, func(c net.Conn, _ *bufio.Reader) { _, _ = io.WriteString(c, tc.resp) }), nil)
			c := dialRaw(t, addr)
			for range 2 {
				c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
				resp, body := c.read(t, "GET")
				if resp.StatusCode != 503 || !strings.Contains(body, "reset reason: connection termination") {
					t.Fatalf("got %d %q", resp.StatusCode, body)
				}
			}
		})
	}
}

// rawBackend serves each connection with serve, after reading one request
// head; the connection closes when serve returns.
func rawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				serve(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestFastPathBodies(t *testing.T) {
	const big = 5 << 20
	payload := strings.Repeat("0123456789abcdef", big/16)
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			// net/http wants the body read before the response goes.
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			_, _ = w.Write(b)
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(big))
			_, _ = io.WriteString(w, payload)
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			for i := range 5 {
				_, _ = io.WriteString(w, strings.Repeat(strconv.Itoa(i), 1000))
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Sum", "done")
		case "/head":
			w.Header().Set("Content-Length", "1234")
		}
	}))
	addr, _ := proxyTo(t, backend, nil)
	hc := h1Client(t)
	url := "http://" + addr

	for _, size := range []int{0, 1, 10 << 10, 64 << 10, 64<<10 + 1, big} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(payload[:size])
			if chunked {
				body = io.MultiReader(body)
			}
			resp, err := hc.Post(url+"/echo", "application/octet-stream", body)
			if err != nil {
				t.Fatalf("POST %d bytes (chunked %v): %v", size, chunked, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != payload[:size] {
				t.Fatalf("POST %d bytes (chunked %v): %d, %d bytes back", size, chunked, resp.StatusCode, len(b))
			}
		}
	}

	resp, body := get(t, hc, url+"/big")
	if resp.StatusCode != 200 || body != payload || resp.ContentLength != big {
		t.Fatalf("GET /big: %d, %d bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	resp, body = get(t, hc, url+"/chunked")
	if resp.StatusCode != 200 || len(body) != 5000 || resp.Trailer.Get("X-Sum") != "done" {
		t.Fatalf("GET /chunked: %d, %d bytes, trailers %v", resp.StatusCode, len(body), resp.Trailer)
	}
	resp, err := hc.Head(url + "/head")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 1234 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestFastPathResponseFraming covers upstream responses delimited by the
// connection's end, interim 1xx responses and chunked bodies with
// extensions: the client always gets a well-framed response and keeps its
// connection.
func TestFastPathResponseFraming(t *testing.T) {
	for _, tc := range []struct{ name, resp, body string }{
		{"until close", "HTTP/1.1 200 OK\r\n\r\nstreamed until close", "streamed until close"},
		{"HTTP/1.0 until close", "HTTP/1.0 200 OK\r\n\r\nold", "old"},
		{"early hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"chunk extensions", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n", "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := proxyTo(t, rawBackend(t, func(c net.Conn, _ *bufio.Reader) { _, _ = io.WriteString(c, tc.resp) }), nil)
			c := dialRaw(t, addr)
			for range 2 {
				c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
				resp, body := c.read(t, "GET")
				if resp.StatusCode != 200 || body != tc.body || resp.Close {
					t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
				}
			}
		})
	}
}

// TestFastPathUpstreamClosesKeepAlive: upstreams that close keep-alive
// connections, announced or not, right after a response or after some
// idleness, never cost the client a request.
func TestFastPathUpstreamClosesKeepAlive(t *testing.T) {
	var conns atomic.Int32
	// Answers one request per connection, then closes without saying so.
	silent := rawBackend(t, func(c net.Conn, _ *bufio.Reader) {
		conns.Add(1)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	announced := rawBackend(t, func(c net.Conn, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
	})
	// A keep-alive server that closes connections idle for 300 ms.
	idleSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), IdleTimeout: 300 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = idleSrv.Serve(ln) }()
	t.Cleanup(func() { idleSrv.Close() })

	for _, tc := range []struct {
		name    string
		backend string
		pause   time.Duration
	}{
		{"closes silently after each response", silent, 0},
		{"announces Connection: close", announced, 0},
		{"closes idle connections", ln.Addr().String(), 1200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, rt := proxyTo(t, tc.backend, nil)
			c := dialRaw(t, addr)
			n := 20
			if tc.pause > 0 {
				n = 3
			}
			for i := range n {
				if i > 0 {
					time.Sleep(tc.pause)
				}
				c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
				resp, body := c.read(t, "GET")
				if resp.StatusCode != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
				}
			}
			if got := rt.Stats()["cluster.web.upstream_rq_2xx"]; got != uint64(n) {
				t.Errorf("upstream_rq_2xx = %d, want %d", got, n)
			}
		})
	}
}

func TestFastPathTimeouts(t *testing.T) {
	backend := rawBackend(t, func(c net.Conn, _ *bufio.Reader) {
		// Headers and part of the body, then nothing.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
		time.Sleep(3 * time.Second)
	})
	addr, rt := proxyTo(t, backend, durationpb.New(200*time.Millisecond))
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %v, %v", resp, err)
	}
	b, err := io.ReadAll(resp.Body)
	if string(b) != "half" || err != io.ErrUnexpectedEOF {
		t.Fatalf("body %q, %v: want the response cut after its first bytes", b, err)
	}
	if got := rt.Stats()["cluster.web.upstream_rq_timeout"]; got != 1 {
		t.Errorf("upstream_rq_timeout = %d, want 1", got)
	}

	// Before the response head: 504, and the connection goes on.
	slow := rawBackend(t, func(c net.Conn, _ *bufio.Reader) { time.Sleep(3 * time.Second) })
	addr, _ = proxyTo(t, slow, durationpb.New(200*time.Millisecond))
	c = dialRaw(t, addr)
	for range 2 {
		c.send(t, "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\n\r\nabc")
		resp, body := c.read(t, "POST")
		if resp.StatusCode != 504 || body != "upstream request timeout" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
}

// TestFastPathLocalRepliesKeepTheConnection: 404 and 503 answered by the
// proxy read the request body away so that the next request parses.
func TestFastPathLocalRepliesKeepTheConnection(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	rc := routeConfig("web", nil)
	rc.VirtualHosts[0].Domains = []string{"web"}
	apply(t, rt, configOf(httpListener(t, addr, "web"), rc, edsCluster(t, "web", false), cla("web", freeAddr(t))))
	c := dialRaw(t, addr)
	c.send(t, "POST / HTTP/1.1\r\nHost: other\r\nContent-Length: 4\r\n\r\nbody"+
		"POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\nbody"+
		"HEAD / HTTP/1.1\r\nHost: other\r\n\r\n")
	for _, want := range []struct {
		method string
		status int
		body   string
	}{{"POST", 404, ""}, {"POST", 503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"}, {"HEAD", 404, ""}} {
		resp, body := c.read(t, want.method)
		if resp.StatusCode != want.status || body != want.body {
			t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, want.status, want.body)
		}
	}
}

func TestFastPathCountsAndRoutesLikeNetHTTP(t *testing.T) {
	addr, rt := proxyTo(t, echoBackend(t), nil)
	c := dialRaw(t, addr)
	for i := range 3 {
		c.send(t, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: web\r\n\r\n", i))
		if resp, _ := c.read(t, "GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	st := rt.Stats()
	for name, want := range map[string]uint64{
		"http.web.downstream_rq_total": 3, "http.web.downstream_rq_http1_total": 3, "http.web.downstream_rq_2xx": 3,
		"http.web.downstream_rq_completed": 3, "cluster.web.upstream_rq_total": 3, "cluster.web.upstream_rq_2xx": 3,
		"cluster.web.upstream_rq_completed": 3, "cluster.web.upstream_cx_active": 1, "http.web.downstream_cx_active": 1,
	} {
		if st[name] != want {
			t.Errorf("%s = %d, want %d", name, st[name], want)
		}
	}
	if st["cluster.web.upstream_cx_rx_bytes_total"] == 0 || st["cluster.web.upstream_cx_tx_bytes_total"] == 0 {
		t.Error("upstream bytes not counted")
	}
}

// TestFastPathEarlyResponse: an upstream that answers before the request
// body is complete gets its answer to the client, and the connection,
// whose request was cut, closes.
func TestFastPathEarlyResponse(t *testing.T) {
	backend := rawBackend(t, func(c net.Conn, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 4\r\n\r\nbig!")
		time.Sleep(3 * time.Second)
	})
	addr, _ := proxyTo(t, backend, nil)
	c := dialRaw(t, addr)
	c.send(t, "POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	resp, body := c.read(t, "POST")
	if resp.StatusCode != 413 || body != "big!" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !c.closed() {
		t.Fatal("the connection with an unfinished request body stayed open")
	}
}
