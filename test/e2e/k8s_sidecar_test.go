package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// startInjectedSidecar runs trellis-dp on this host exactly as the kubelet
// would run the Pod's injected kuma-sidecar container: its args (with
// $(VAR) references expanded, as Kubernetes does) and its env (downward-API
// fields resolved from the Pod). extra flags are appended (the test passes
// a dataplane token: service-account-token authentication is not built).
// It waits until the proxy's admin /ready answers 200.
func startInjectedSidecar(t *testing.T, pod *corev1.Pod, extra ...string) *proxy {
	t.Helper()
	var c *corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == "kuma-sidecar" {
				c = &list[i]
			}
		}
	}
	if c == nil {
		t.Fatalf("the Pod has no kuma-sidecar container")
	}
	env := map[string]string{}
	vars := []string{"HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil && f.FieldRef != nil {
			switch f.FieldRef.FieldPath {
			case "metadata.name":
				v = pod.Name
			case "metadata.namespace":
				v = pod.Namespace
			case "status.podIP":
				v = pod.Status.PodIP
			default:
				t.Fatalf("env %s: field %s not resolved by the test", e.Name, f.FieldRef.FieldPath)
			}
		}
		env[e.Name] = v
		vars = append(vars, e.Name+"="+v)
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	args := make([]string, 0, len(c.Args)+len(extra))
	for _, a := range append(slices.Clone(c.Args), extra...) {
		args = append(args, ref.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := env[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		}))
	}
	admin := ""
	for i, a := range args {
		if a == "--admin-addr" && i+1 < len(args) {
			admin = args[i+1]
		}
	}
	if admin == "" {
		t.Fatalf("the injected args set no --admin-addr: %q", args)
	}
	p := &proxy{t: t, name: pod.Name, admin: admin, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, "trellis-dp"), args...)
	p.cmd.Env = vars
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	eventuallyDP(t, p, 30*time.Second, func() error {
		resp, err := http.Get("http://" + admin + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/ready %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

// eventuallyDP retries f until it succeeds, failing with the proxy's log
// when it exits or the time is up.
func eventuallyDP(t *testing.T, p *proxy, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("trellis-dp %s exited; its log:\n%s", p.name, p.log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("trellis-dp %s: %v after %s; its log:\n%s", p.name, err, within, strings.TrimSpace(p.log.String()))
		}
	}
}
