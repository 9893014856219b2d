//go:build race

package kds_test

// slowdown stretches wall-clock deadlines under the race detector, which
// makes the pure-Go SQLite many times slower.
const slowdown = 5
