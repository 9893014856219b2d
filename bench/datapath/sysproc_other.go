//go:build !linux

package main

import "syscall"

// sysProcAttr is empty outside Linux (the benchmark reads /proc, so it
// only measures on Linux).
func sysProcAttr() *syscall.SysProcAttr { return nil }
