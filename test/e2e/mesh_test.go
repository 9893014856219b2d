package e2e

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// proxy is one running trellis-dp process.
type proxy struct {
	t     *testing.T
	name  string
	admin string
	cmd   *exec.Cmd
	log   *syncBuffer
	done  chan struct{}
}

// startDP runs trellis-dp for a Dataplane (YAML) against cp and waits until
// its admin /ready says it has its config. Unless extra passes one, the
// proxy gets a dataplane token for its name, mesh and services from
// `trellisctl generate dataplane-token`.
func startDP(t *testing.T, cp *controlPlane, name, dataplane string, extra ...string) *proxy {
	t.Helper()
	if !slices.Contains(extra, "--dataplane-token-file") {
		extra = append(extra, "--dataplane-token-file", dpTokenFile(t, cp, dataplane))
	}
	p := launchDP(t, cp, name, dataplane, extra...)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("trellis-dp %s exited; its log:\n%s", name, p.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("trellis-dp %s not ready within 20 s; its log:\n%s", name, p.log)
	return nil
}

// launchDP starts trellis-dp for a Dataplane (YAML) against cp with extra
// flags, and returns at once.
func launchDP(t *testing.T, cp *controlPlane, name, dataplane string, extra ...string) *proxy {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(file, []byte(dataplane), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, name: name, admin: freeAddr(t), log: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"run",
		"--cp-address", "https://" + cp.DPAddr,
		"--dataplane-file", file,
		"--ca-cert-file", filepath.Join(cp.DataDir, "certs", "dp-server.crt"),
		"--admin-addr", p.admin,
	}, extra...)
	p.cmd = exec.Command(filepath.Join(binDir, "trellis-dp"), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	return p
}

// dpTokenFile gets a dataplane token bound to the Dataplane's name, mesh
// and kuma.io/service values with trellisctl, and writes it to a file.
func dpTokenFile(t *testing.T, cp *controlPlane, dataplane string) string {
	t.Helper()
	var dp struct {
		Name       string `json:"name"`
		Mesh       string `json:"mesh"`
		Networking struct {
			Inbound []struct {
				Tags map[string]string `json:"tags"`
			} `json:"inbound"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(dataplane), &dp); err != nil {
		t.Fatal(err)
	}
	args := []string{"generate", "dataplane-token", "--name", dp.Name, "--mesh", cmp.Or(dp.Mesh, "default"), "--valid-for", "1h"}
	var services []string
	for _, in := range dp.Networking.Inbound {
		if svc := in.Tags["kuma.io/service"]; svc != "" && !slices.Contains(services, svc) {
			services = append(services, svc)
		}
	}
	if len(services) > 0 {
		args = append(args, "--tag", "kuma.io/service="+strings.Join(services, ","))
	}
	return writeToken(t, cp.mustCtl("", args...))
}

// writeToken writes a token to a private file and returns its path.
func writeToken(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dataplane.token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Stop sends SIGTERM and waits for the proxy to exit.
func (p *proxy) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("trellis-dp %s did not exit within 15 s of SIGTERM", p.name)
	}
}

// freePort returns a free loopback port number.
func freePort(t *testing.T) int {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// serviceDP returns the Dataplane of one instance of a service whose app
// listens on appPort; the sidecar's inbound listens on a free port.
func serviceDP(t *testing.T, name, service, protocol string, appPort int) string {
	return fmt.Sprintf(`type: Dataplane
mesh: default
name: %s
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags:
      kuma.io/service: %s
      kuma.io/protocol: %s
`, name, freePort(t), appPort, service, protocol)
}

// clientDP returns a Dataplane with outbounds (port → service).
func clientDP(t *testing.T, name string, outbounds map[int]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "type: Dataplane\nmesh: default\nname: %s\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: %d\n    servicePort: %d\n    tags:\n      kuma.io/service: %s\n  outbound:\n", name, freePort(t), freePort(t), name)
	for port, svc := range outbounds {
		fmt.Fprintf(&b, "  - port: %d\n    tags:\n      kuma.io/service: %s\n", port, svc)
	}
	return b.String()
}

// httpApp serves "instance" names over HTTP/1.1 and h2c on a free port.
type httpApp struct {
	port int
	srv  *http.Server
}

func startHTTPApp(t *testing.T, instance string) *httpApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"instance": instance, "proto": r.Proto, "path": r.URL.Path})
	})
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: protocols}
	go srv.Serve(ln)
	app := &httpApp{port: ln.Addr().(*net.TCPAddr).Port, srv: srv}
	t.Cleanup(func() { srv.Close() })
	return app
}

// startEchoApp echoes every line it reads, prefixed with instance.
func startEchoApp(t *testing.T, instance string) int {
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
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s:%s\n", instance, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// client is an HTTP client that does not reuse connections across tests.
func newClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
}

// get fetches url and returns the instance that answered.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var v struct{ Instance, Proto string }
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("body %q: %w", body, err)
	}
	return v.Instance, nil
}

// overview returns a dataplane's overview from the API.
func overview(t *testing.T, cp *controlPlane, name string) map[string]any {
	t.Helper()
	resp, err := http.Get(cp.URL + "/meshes/default/dataplanes/" + name + "/_overview")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return v
}

// lastSubscription digs the newest subscription out of an overview.
func lastSubscription(ov map[string]any) map[string]any {
	in, _ := ov["dataplaneInsight"].(map[string]any)
	subs, _ := in["subscriptions"].([]any)
	if len(subs) == 0 {
		return nil
	}
	s, _ := subs[len(subs)-1].(map[string]any)
	return s
}

func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, within, err)
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
