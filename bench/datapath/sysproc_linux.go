package main

import "syscall"

// sysProcAttr makes a child die with the benchmark, even when it is
// killed: no proxy or control plane is left behind holding its ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
