package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

const smapsSample = `00400000-00e66000 r-xp 00000000 08:01 123 /opt/trellis-dp
Size:              10648 kB
Rss:                9856 kB
Anonymous:             0 kB
00e66000-01bf5000 r--p 00a66000 08:01 123 /opt/trellis-dp
Size:              14012 kB
Anonymous:             0 kB
01bf5000-01c8d000 rw-p 017f5000 08:01 123 /opt/trellis-dp
Anonymous:           608 kB
01c8d000-01c9d000 r--p 01c8d000 08:01 123 /opt/trellis-dp
Anonymous:            16 kB
7f0000000000-7f0000001000 r-xp 00000000 08:01 456 /usr/lib/libc.so.6
Anonymous:             0 kB
`

func TestReadOnlyMappings(t *testing.T) {
	got := readOnlyMappings(strings.NewReader(smapsSample), "/opt/trellis-dp")
	want := []mapping{{0x400000, 0xe66000}, {0xe66000, 0x1bf5000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %x, want %x (writable, copied-on-write and other files' mappings excluded)", got, want)
	}
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

func TestReleaseExecutablePages(t *testing.T) {
	before := rssFileKB(t)
	if n := releaseExecutablePages(); n == 0 {
		t.Fatal("nothing released")
	}
	after := rssFileKB(t)
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after", before, after)
	}
	// The process goes on: code and read-only data fault back in.
	if s := strings.Repeat("ok", 2); s != "okok" {
		t.Fatal(s)
	}
}
