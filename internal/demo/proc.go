package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a child gets after SIGTERM before it is killed.
const stopGrace = 5 * time.Second

// tailLines is how many log lines an error message quotes.
const tailLines = 20

// child is one process the demo started; its output goes to a log file.
type child struct {
	// name says what the process is, for messages: "the control plane
	// (trellis-cp)".
	name    string
	logPath string
	cmd     *exec.Cmd
	// done is closed once the process has exited; err is then its exit.
	done chan struct{}
	err  error
}

// startChild runs bin with args and env, its stdout and stderr appended
// to a fresh log file at logPath.
func startChild(name, logPath, bin string, args, env []string) (*child, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating the log folder: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
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

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitReason describes how an exited process ended.
func (c *child) exitReason() string {
	if c.err == nil {
		return "exit status 0"
	}
	return c.err.Error()
}

// stop sends SIGTERM, waits up to grace for the process to exit, then
// kills it. It reports whether the process had to be killed.
func (c *child) stop(grace time.Duration) bool {
	if c.exited() {
		return false
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = c.cmd.Process.Kill() // no SIGTERM here (Windows): kill at once
	}
	select {
	case <-c.done:
		return false
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	return true
}

// tail returns the last n lines of the child's log, indented, or a note
// when the log cannot be read or is empty.
func (c *child) tail(n int) string {
	raw, err := readTail(c.logPath, 64<<10)
	if err != nil {
		return "  (its log cannot be read: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return "  (its log is empty)"
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// describeFailure is an error message for something that failed (subject
// what) and its process: where its log is and the end of that log.
func (c *child) describeFailure(subject, what string) error {
	whose := "its log"
	if subject != c.name {
		whose = "the log of " + c.name
	}
	return fmt.Errorf("%s %s; the last lines of %s (%s):\n%s", subject, what, whose, c.logPath, c.tail(tailLines))
}

// readTail reads at most limit bytes from the end of a file, starting at a
// line boundary.
func readTail(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	start := max(info.Size()-limit, 0)
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	if start > 0 {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	return raw, nil
}
