//go:build !race

package kds_test

// slowdown stretches wall-clock deadlines (1 without the race detector).
const slowdown = 1
