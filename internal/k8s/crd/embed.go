package crd

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed all:generated
var generated embed.FS

// Files returns the generated CRD manifests as a file system whose root holds
// one kuma.io_<plural>.yaml per kind.
func Files() fs.FS {
	sub, err := fs.Sub(generated, "generated")
	if err != nil {
		panic(err) // the embedded folder always exists
	}
	return sub
}

// All returns every generated CRD manifest (one YAML document each, each
// starting with a comment line and "---"), sorted by file name.
func All() [][]byte {
	names := FileNames()
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(generated, "generated/"+n)
		if err != nil {
			panic(err) // listed by FileNames from the same embed.FS
		}
		out = append(out, b)
	}
	return out
}

// FileNames lists the generated CRD files, sorted.
func FileNames() []string {
	entries, err := fs.ReadDir(generated, "generated")
	if err != nil {
		panic(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}
