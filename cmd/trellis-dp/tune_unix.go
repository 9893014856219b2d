//go:build unix

package main

import "syscall"

// reexec replaces the process image; it returns only on failure.
func reexec(exe string, args, env []string) {
	_ = syscall.Exec(exe, args, env)
}
