// Command gen writes the CRD manifests of every resource kind into
// internal/k8s/crd/generated (or the folder given as the first argument),
// removing stale ones. Run it from the repository root:
//
//	go run ./internal/k8s/crd/gen
package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

func main() {
	dir := filepath.Join("internal", "k8s", "crd", "generated")
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := run(dir); err != nil {
		slog.Error("crd gen", "err", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := crd.Generate(kinds.Registry())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range old {
		if _, keep := files[e.Name()]; !keep && strings.HasSuffix(e.Name(), ".yaml") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove stale %s: %w", e.Name(), err)
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	fmt.Printf("wrote %d CRDs to %s\n", len(files), dir)
	return nil
}
