// Package netns gives tests throwaway Linux network namespaces: create one
// (`ip netns add`, removed by t.Cleanup), wire namespaces together with veth
// pairs or a bridge (IPv4 and IPv6 addresses), run commands inside, as root
// or as a given uid/gid, and run Go code inside (sockets opened there stay
// there). Everything needs root, `ip` and iptables; tests call Require,
// which skips loudly without them, or fails when TRELLIS_TEST_STRICT=1.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// StrictEnv names the environment variable that, set to 1, turns a missing
// prerequisite into a test failure instead of a skip (CI sets it).
const StrictEnv = "TRELLIS_TEST_STRICT"

// cloneNewNet is CLONE_NEWNET, the namespace type given to setns(2).
const cloneNewNet = 0x40000000

// seq numbers the namespaces and links of this process, for unique names.
var seq atomic.Int64

var probe struct {
	once      sync.Once
	err, err6 error
}

// Available says why network-namespace tests cannot run here (nil when
// they can): not root, no `ip`, no iptables-restore/iptables-save, or the
// kernel refuses to create a namespace. The answer is computed once.
func Available() error {
	probe.once.Do(runProbe)
	return probe.err
}

// AvailableIPv6 is Available plus IPv6 support: the kernel has IPv6, and
// ip6tables can use the nat table inside a namespace.
func AvailableIPv6() error {
	probe.once.Do(runProbe)
	if probe.err != nil {
		return probe.err
	}
	return probe.err6
}

func runProbe() {
	if os.Geteuid() != 0 {
		probe.err = errors.New("netns: tests need root (network namespaces, iptables)")
		return
	}
	for _, bin := range []string{"ip", "iptables-restore", "iptables-save", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			probe.err = fmt.Errorf("netns: %s not found on PATH (Debian: apt-get install iproute2 iptables): %w", bin, err)
			return
		}
	}
	name := fmt.Sprintf("trellis-probe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		probe.err = fmt.Errorf("netns: ip netns add: %v: %s", err, bytes.TrimSpace(out))
		return
	}
	defer exec.Command("ip", "netns", "del", name).Run() //nolint:errcheck // best effort
	if out, err := exec.Command("ip", "netns", "exec", name, "iptables", "-t", "nat", "-S").CombinedOutput(); err != nil {
		probe.err = fmt.Errorf("netns: iptables nat table unusable in a namespace: %v: %s", err, bytes.TrimSpace(out))
		return
	}
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		probe.err6 = errors.New("netns: the kernel has no IPv6 (/proc/net/if_inet6 missing)")
		return
	}
	for _, bin := range []string{"ip6tables-restore", "ip6tables-save", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			probe.err6 = fmt.Errorf("netns: %s not found on PATH: %w", bin, err)
			return
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", name, "ip6tables", "-t", "nat", "-S").CombinedOutput(); err != nil {
		probe.err6 = fmt.Errorf("netns: ip6tables nat table unusable in a namespace: %v: %s", err, bytes.TrimSpace(out))
	}
}

// Require skips the test, loudly, when Available reports a problem, or
// fails it when TRELLIS_TEST_STRICT=1.
func Require(t testing.TB) {
	t.Helper()
	skipOrFail(t, Available())
}

// RequireIPv6 is Require for tests (or parts of tests) that need IPv6.
func RequireIPv6(t testing.TB) {
	t.Helper()
	skipOrFail(t, AvailableIPv6())
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(StrictEnv) == "1" {
		t.Fatalf("%v (%s=1, so this fails instead of skipping)", err, StrictEnv)
	}
	t.Skipf("!!! SKIPPING: %v; run as root on Linux with iproute2 and iptables installed", err)
}

// NS is a named network namespace created for one test. A nil *NS stands
// for the root (host) namespace wherever a namespace is accepted.
type NS struct {
	// Name is the name under /run/netns (`ip netns exec <Name> ...`).
	Name string
}

// New creates a namespace with a unique name and its loopback up, and
// deletes it (with every interface inside) when the test ends. It calls
// Require first.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	ns := &NS{Name: fmt.Sprintf("trellis-%d-%d", os.Getpid(), seq.Add(1))}
	mustIP(t, "netns", "add", ns.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("netns: deleting %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.MustExec(t, "ip", "link", "set", "lo", "up")
	return ns
}

// String returns the namespace's name, or "root" for a nil NS.
func (ns *NS) String() string {
	if ns == nil {
		return "root"
	}
	return ns.Name
}

// Path returns the namespace's file under /run/netns.
func (ns *NS) Path() string { return "/run/netns/" + ns.Name }

// Do runs f on an OS thread switched into the namespace, then switches the
// thread back. Sockets f opens (net.Listen, net.Dial) belong to the
// namespace for their whole life, so a listener created here keeps serving
// after Do returns. Do on a nil NS just calls f. f must not start
// goroutines that expect to be inside the namespace: they are not.
func (ns *NS) Do(f func() error) error {
	if ns == nil {
		return f()
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: opening the current namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(ns.Path())
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: opening %s: %w", ns.Path(), err)
	}
	defer target.Close()
	if err := setns(int(target.Fd())); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: entering %s: %w", ns.Name, err)
	}
	ferr := f()
	if err := setns(int(orig.Fd())); err != nil {
		// The thread stays locked, so the runtime throws it away when
		// this goroutine ends instead of reusing it in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("netns: leaving %s: %w", ns.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(fd int) error {
	if _, _, errno := syscall.RawSyscall(sysSetns, uintptr(fd), cloneNewNet, 0); errno != 0 {
		return errno
	}
	return nil
}

// Start starts cmd inside the namespace (the child inherits the network
// namespace of the thread that forks it). Use AsUser to run it as another
// uid/gid. The caller waits for it (or kills it) as for any exec.Cmd.
func (ns *NS) Start(cmd *exec.Cmd) error {
	return ns.Do(cmd.Start)
}

// Run runs cmd inside the namespace and waits for it.
func (ns *NS) Run(cmd *exec.Cmd) error {
	if err := ns.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Output runs name with args inside the namespace and returns its standard
// output; the error includes standard error.
func (ns *NS) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := ns.Run(cmd); err != nil {
		return stdout.Bytes(), fmt.Errorf("netns %s: %s %s: %w: %s", ns, name, strings.Join(args, " "), err,
			bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// MustExec runs name with args inside the namespace (within 30 s) and
// returns its standard output; any failure fails the test.
func (ns *NS) MustExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Output(ctx, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// AsUser makes cmd run as uid/gid (no supplementary groups) and returns it.
func AsUser(cmd *exec.Cmd, uid, gid uint32) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: false, Groups: []uint32{}}
	return cmd
}

// mustIP runs `ip args...` in the root namespace, failing the test on error.
func mustIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// Command returns a command that runs name with args inside the namespace
// through `ip netns exec`, which also bind-mounts the files of
// /etc/netns/<Name>/ over their /etc counterparts for the command (see
// WriteEtc: a private resolv.conf or hosts file). Run it with cmd.Start or
// cmd.Run as usual, not with ns.Start.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// CommandAs is Command running as uid/gid with no supplementary groups
// (through setpriv, from util-linux).
func (ns *NS) CommandAs(ctx context.Context, uid, gid uint32, name string, args ...string) *exec.Cmd {
	return ns.Command(ctx, "setpriv", append([]string{"--reuid", fmt.Sprint(uid), "--regid", fmt.Sprint(gid),
		"--clear-groups", "--", name}, args...)...)
}

// WriteEtc writes /etc/netns/<Name>/<file> (e.g. "resolv.conf"), which
// commands started with Command see as /etc/<file>; removed when the test
// ends.
func (ns *NS) WriteEtc(t testing.TB, file, content string) {
	t.Helper()
	dir := "/etc/netns/" + ns.Name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(dir+"/"+file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
