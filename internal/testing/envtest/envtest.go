// Package envtest starts a real Kubernetes API server (kube-apiserver built
// from k8s.io/kubernetes by tools/k8s) on a real etcd (Debian's etcd-server)
// for tests, through controller-runtime's envtest, bound to loopback only.
//
// The binaries are found in $KUBEBUILDER_ASSETS or, when that is unset, in
// <repo>/.bin/k8s (what `make k8s-test-bins` and .ci/run build); etcd falls
// back to the one on PATH. Without them a test is skipped loudly, or fails
// when TRELLIS_TEST_STRICT=1.
//
//	func TestMain(m *testing.M) { envtest.Main(m) }
//	func TestX(t *testing.T) { env := envtest.Shared(t); cfg := env.Config; ... }
package envtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
)

// StrictEnv names the environment variable that, set to 1, turns missing
// binaries into a test failure instead of a skip (CI sets it).
const StrictEnv = "TRELLIS_TEST_STRICT"

// AssetsEnv is envtest's variable naming the folder of the binaries.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Env is one running API server.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Kubectl is the path of the kubectl binary next to the API server.
	Kubectl string
	// KubeconfigFile is a kubeconfig for Config, for kubectl --kubeconfig.
	KubeconfigFile string
	// Dir holds the binaries.
	Dir string

	env *crenvtest.Environment
	tmp string
}

// Binaries returns the folder holding kube-apiserver, kubectl and etcd (or,
// for etcd, the path of the one on PATH), or an error saying what is missing
// and how to build it.
func Binaries() (dir, etcd string, err error) {
	dir = os.Getenv(AssetsEnv)
	if dir == "" {
		root, rerr := repoRoot()
		if rerr != nil {
			return "", "", fmt.Errorf("%s is unset and %w", AssetsEnv, rerr)
		}
		dir = filepath.Join(root, ".bin", "k8s")
	}
	for _, b := range []string{"kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", "", fmt.Errorf("no %s in %s (build it with `make k8s-test-bins` or tools/k8s/build.sh, or set %s)", b, dir, AssetsEnv)
		}
	}
	etcd = filepath.Join(dir, "etcd")
	if _, err := os.Stat(etcd); err != nil {
		p, lerr := exec.LookPath("etcd")
		if lerr != nil {
			return "", "", fmt.Errorf("no etcd in %s nor on PATH (Debian: apt-get install etcd-server)", dir)
		}
		etcd = p
	}
	return dir, etcd, nil
}

// repoRoot walks up from the working directory to the folder holding the
// root go.mod (the one with a .bin or .git beside it).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "tools", "k8s", "go.mod")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", errors.New("the repository root (with tools/k8s) was not found above " + wd)
		}
	}
}

// skipOrFail skips t loudly, or fails it under TRELLIS_TEST_STRICT=1.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(StrictEnv) == "1" {
		t.Fatalf("envtest: %v (%s=1, so this fails instead of skipping)", err, StrictEnv)
	}
	t.Skipf("!!! SKIPPING: envtest: %v", err)
}

// Start starts a new API server and etcd for t, stopped when t ends.
func Start(t testing.TB) *Env {
	t.Helper()
	dir, etcd, err := Binaries()
	if err != nil {
		skipOrFail(t, err)
	}
	e, err := start(dir, etcd)
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("envtest: stop: %v", err)
		}
	})
	return e
}

func start(dir, etcd string) (*Env, error) {
	tmp, err := os.MkdirTemp("", "trellis-envtest-*")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	env := &crenvtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	env.ControlPlane.GetAPIServer().Path = filepath.Join(dir, "kube-apiserver")
	env.ControlPlane.GetAPIServer().Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none")
	env.ControlPlane.Etcd = &crenvtest.Etcd{Path: etcd}
	env.ControlPlane.KubectlPath = filepath.Join(dir, "kubectl")
	cfg, err := env.Start()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", dir, err)
	}
	e := &Env{Config: cfg, Kubectl: env.ControlPlane.KubectlPath, Dir: dir, env: env, tmp: tmp}
	e.KubeconfigFile = filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(e.KubeconfigFile, env.KubeConfig, 0o600); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return e, nil
}

// Stop stops the API server and etcd and removes their files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	os.RemoveAll(e.tmp)
	return err
}

var shared struct {
	once sync.Once
	mu   sync.Mutex
	env  *Env
	err  error
}

// Shared returns the test binary's shared API server, starting it on first
// use (Main stops it). Tests sharing it must not depend on an empty
// cluster: use fresh namespaces or clean up what they create.
func Shared(t testing.TB) *Env {
	t.Helper()
	dir, etcd, err := Binaries()
	if err != nil {
		skipOrFail(t, err)
	}
	shared.once.Do(func() { shared.env, shared.err = start(dir, etcd) })
	if shared.err != nil {
		t.Fatalf("envtest: %v", shared.err)
	}
	return shared.env
}

// Main runs the tests, stops the shared API server and exits; call it from
// TestMain in every package that uses Shared.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "envtest:", err)
		}
		shared.env = nil
	}
	shared.mu.Unlock()
	os.Exit(code)
}
