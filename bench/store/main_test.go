package main

import "testing"

// The benchmark runs once at a tiny size, so it keeps working; it never
// asserts a speed. (PostgreSQL's store has its own tests; the benchmark's
// postgres backend is the same pgtest server they use.)
func TestRunTiny(t *testing.T) {
	if err := run(150, []string{"memory", "sqlite"}, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := run(10, []string{"nosuch"}, 1, 1); err == nil {
		t.Fatal("an unknown backend was accepted")
	}
}
