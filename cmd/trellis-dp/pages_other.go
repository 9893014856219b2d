//go:build !linux

package main

// releaseExecutablePages is a Linux feature.
func releaseExecutablePages() int { return 0 }
