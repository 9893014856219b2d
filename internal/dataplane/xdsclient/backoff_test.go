package xdsclient

import (
	"testing"
	"time"
)

func TestBackoffGrowsToTheCapWithJitter(t *testing.T) {
	b := backoff{base: 250 * time.Millisecond, max: 30 * time.Second}
	for i := range 100 {
		ceiling := min(250*time.Millisecond<<min(i, 20), 30*time.Second)
		if d := b.next(); d < 0 || d >= ceiling {
			t.Fatalf("attempt %d: delay %v outside [0, %v)", i, d, ceiling)
		}
	}
	b.reset()
	if d := b.next(); d >= 250*time.Millisecond {
		t.Errorf("after reset: delay %v, want < 250ms", d)
	}
}
