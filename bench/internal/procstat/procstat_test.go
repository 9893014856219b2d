package procstat

import (
	"os"
	"testing"
)

func TestOwnProcess(t *testing.T) {
	x := 0
	for i := range 20_000_000 { // some CPU time
		x += i
	}
	_ = x
	cpu, err := CPUSeconds(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("CPUSeconds = %v, %v", cpu, err)
	}
	rss, err := StatusKiB(os.Getpid(), "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("VmRSS = %d, %v", rss, err)
	}
	if _, err := StatusKiB(os.Getpid(), "NoSuchKey"); err == nil {
		t.Error("a missing key gave no error")
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("a missing process gave no error")
	}
}
