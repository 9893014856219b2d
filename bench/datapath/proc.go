package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a child gets after SIGTERM before it is killed.
const stopGrace = 5 * time.Second

// child is one process the benchmark started (control plane, proxies);
// its output goes to a log file.
type child struct {
	// name says what it is in messages and tables: "trellis-dp client".
	name    string
	logPath string
	cmd     *exec.Cmd
	// done is closed once the process has exited; err is then its exit.
	done chan struct{}
	err  error
}

// startChild runs bin with args and env, its stdout and stderr written to
// logPath.
func startChild(name, logPath, bin string, args, env []string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to stopGrace, then kills the process.
func (c *child) stop() {
	if c.exited() {
		return
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = c.cmd.Process.Kill()
	}
	select {
	case <-c.done:
	case <-time.After(stopGrace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// failure describes what went wrong with the child and quotes the end of
// its log.
func (c *child) failure(what string) error {
	if c.exited() {
		what += fmt.Sprintf(" (it exited: %v)", c.err)
	}
	return fmt.Errorf("%s %s; the end of its log %s:\n%s", c.name, what, c.logPath, tail(c.logPath, 20))
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "  (cannot read it: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// readAllLimit reads at most n bytes of r.
func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, n))
}
