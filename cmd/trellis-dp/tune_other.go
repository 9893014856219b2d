//go:build !unix

package main

// reexec cannot replace the process image here: the proxy runs untuned.
func reexec(string, []string, []string) {}
