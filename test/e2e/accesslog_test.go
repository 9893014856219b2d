package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineCollector is a TCP log collector: it keeps every line it reads.
type lineCollector struct {
	addr  string
	mu    sync.Mutex
	lines []string
}

func startLineCollector(t *testing.T) *lineCollector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lc := &lineCollector{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					lc.mu.Lock()
					lc.lines = append(lc.lines, sc.Text())
					lc.mu.Unlock()
				}
			}()
		}
	}()
	return lc
}

func (lc *lineCollector) snapshot() []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return append([]string(nil), lc.lines...)
}

// linesWith returns the lines of text that contain s.
func linesWith(lines []string, s string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func fileLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// MeshAccessLog with File (Plain and Json) and Tcp backends on the
// outbound of a client sidecar, and a File backend on the inbound of the
// backend's sidecar: exactly one line per request in each, on the
// HTTP/1.1 fast path and on the net/http path (an HTTP/1.0 request).
func TestAccessLog(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	app := startTestApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", app.port))
	out := freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	collector := startLineCollector(t)
	dir := t.TempDir()
	plain, jsonl, inbound := filepath.Join(dir, "plain.log"), filepath.Join(dir, "json.log"), filepath.Join(dir, "inbound.log")
	applyYAML(t, cp, fmt.Sprintf(`type: MeshAccessLog
name: logs
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: File
        file:
          path: %s
          format: {type: Plain, plain: "%%KUMA_SOURCE_SERVICE%%>%%KUMA_DESTINATION_SERVICE%% %%RESPONSE_CODE%% %%UPSTREAM_HOST%% %%REQ(X-TEST-ID)%% %%PROTOCOL%%"}
      - type: File
        file:
          path: %s
          format:
            type: Json
            json:
            - {key: id, value: "%%REQ(X-TEST-ID)%%"}
            - {key: status, value: "%%RESPONSE_CODE%%"}
            - {key: upstream, value: "%%UPSTREAM_HOST%%"}
            - {key: src, value: "%%KUMA_SOURCE_SERVICE%%"}
            - {key: dst, value: "%%KUMA_DESTINATION_SERVICE%%"}
            - {key: method, value: "%%REQ(:METHOD)%%"}
            - {key: start, value: "%%START_TIME%%"}
            - {key: duration, value: "%%DURATION%%"}
            - {key: sent, value: "%%BYTES_SENT%%"}
      - type: Tcp
        tcp:
          address: %s
          format: {type: Plain, plain: "tcp %%REQ(X-TEST-ID)%% %%RESPONSE_CODE%%"}
  from:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: File
        file: {path: %s}
`, plain, jsonl, collector.addr, inbound))

	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	within(t, cp, "frontend-1", 20*time.Second, "the access log", func() error {
		if _, err := request(c, http.MethodGet, url, "X-Test-Id", "warmup"); err != nil {
			return err
		}
		if len(linesWith(fileLines(plain), "warmup")) == 0 || len(linesWith(collector.snapshot(), "warmup")) == 0 {
			return fmt.Errorf("no access log line yet")
		}
		return nil
	})

	const n = 20
	for i := range n {
		id := fmt.Sprintf("req-%d.", i)
		a, err := request(c, http.MethodGet, url, "X-Test-Id", id, "X-Request-Id", id)
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, a.status, err)
		}
	}
	netHTTP10(t, out, "net-0.")

	ids := []string{"net-0."}
	for i := range n {
		ids = append(ids, fmt.Sprintf("req-%d.", i))
	}
	eventually(t, 5*time.Second, "one line per request in every access log", func() error {
		pl, jl, tl := fileLines(plain), fileLines(jsonl), collector.snapshot()
		for _, id := range ids {
			for name, lines := range map[string][]string{"plain": pl, "json": jl, "tcp": tl} {
				if got := len(linesWith(lines, `"`+id+`"`)) + len(linesWith(lines, " "+id+" ")); got != 1 {
					return fmt.Errorf("%s: %d lines for %s", name, got, id)
				}
			}
		}
		return nil
	})
	for _, l := range linesWith(fileLines(plain), "req-0.") {
		if !strings.HasPrefix(l, "frontend-1>backend 200 127.0.0.1:") || !strings.HasSuffix(l, " HTTP/1.1") {
			t.Errorf("plain line %q", l)
		}
	}
	if l := linesWith(fileLines(plain), "net-0."); len(l) != 1 || !strings.HasSuffix(l[0], " HTTP/1.0") {
		t.Errorf("plain line of the HTTP/1.0 request: %q", l)
	}
	for _, l := range fileLines(jsonl) {
		var e struct {
			ID, Upstream, Src, Dst, Method, Start string
			Status, Duration, Sent                int
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("json line %q: %v", l, err)
		}
		if e.Status != 200 || !strings.HasPrefix(e.Upstream, "127.0.0.1:") || e.Src != "frontend-1" || e.Dst != "backend" || e.Method != "GET" || e.Sent == 0 {
			t.Errorf("json line %q: %+v", l, e)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", e.Start); err != nil {
			t.Errorf("json line %q: start: %v", l, err)
		}
	}
	// The inbound (Kuma's default format, which has the X-Request-Id):
	// the backend's sidecar logs each request once, with the destination
	// service.
	eventually(t, 5*time.Second, "the inbound access log", func() error {
		lines := fileLines(inbound)
		for _, id := range ids {
			if got := len(linesWith(lines, `"`+id+`"`)); got != 1 {
				return fmt.Errorf("inbound: %d lines for %s", got, id)
			}
		}
		if l := linesWith(lines, "req-1."); !strings.Contains(l[0], `"unknown" "backend"`) || !strings.Contains(l[0], " 200 ") {
			return fmt.Errorf("inbound line %q", l[0])
		}
		return nil
	})
	noNacks(t, cp)
}

// netHTTP10 sends an HTTP/1.0 request (served by net/http, not the fast
// path) with an X-Test-Id.
func netHTTP10(t *testing.T, port int, id string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: backend\r\nX-Test-Id: %s\r\nX-Request-Id: %s\r\n\r\n", id, id)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP/1.0 request: %s", resp.Status)
	}
}

// A Tcp backend whose collector accepts connections but never reads: the
// traffic goes on at full speed (lines are dropped and counted).
func TestAccessLogStalledSink(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	app := startTestApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", app.port))
	out := freePort(t)
	client := startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	long := strings.Repeat("x", 8000)
	applyYAML(t, cp, fmt.Sprintf(`type: MeshAccessLog
name: stalled
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: Tcp
        tcp: {address: %q, format: {type: Plain, plain: "%s %%REQ(:PATH)%%"}}
`, ln.Addr().String(), long))
	within(t, cp, "frontend-1", 20*time.Second, "the access log config", func() error {
		if !strings.Contains(fmt.Sprint(configDump(t, client)), "trellis-al-tcp") {
			return fmt.Errorf("not applied yet")
		}
		return nil
	})
	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < 3000; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in 60 s: the stalled log sink slows traffic down", i)
		}
		if a, err := request(c, http.MethodGet, url); err != nil || a.status != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, a.status, err)
		}
	}
	// The counter of dropped lines is there (how many were dropped depends
	// on the socket buffers; the sink unit tests count them).
	if stats := adminGet(t, client, "/stats"); !strings.Contains(stats, "access_log.tcp.dropped") {
		t.Errorf("no access_log.tcp.dropped in /stats")
	}
}

// adminGet fetches a path of a sidecar's admin server.
func adminGet(t *testing.T, p *proxy, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
