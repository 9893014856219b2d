//go:build !linux

package demo

import "syscall"

// sysProcAttr leaves children in trellisctl's process group: Ctrl-C
// reaches them too, and they stop on their own.
func sysProcAttr() *syscall.SysProcAttr { return nil }
