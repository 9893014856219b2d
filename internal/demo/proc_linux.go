package demo

import "syscall"

// sysProcAttr puts a child in its own process group, so that the
// terminal's Ctrl-C reaches trellisctl only and the demo stops its children
// in order, and has the kernel send it SIGTERM should trellisctl die
// without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
