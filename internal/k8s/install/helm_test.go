package install_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// With a helm binary on PATH, the chart lints and `helm template
// --include-crds` renders the same objects as trellisctl (helm v3.22.0
// builds here with `go install helm.sh/helm/v3/cmd/helm@v3.22.0`, which
// takes minutes). helm is not packaged by Debian, so this skips
// without it even under TRELLIS_TEST_STRICT=1: TestChartRendersTheSameObjects
// renders the chart with Go's text/template and Sprig instead.
func TestHelmTemplate(t *testing.T) {
	helm, err := exec.LookPath("helm")
	if err != nil {
		t.Skip("!!! SKIPPING: no helm binary on PATH (not packaged by Debian); TestChartRendersTheSameObjects renders the chart with text/template + Sprig instead")
	}
	chartDir := filepath.Join("..", "..", "..", "deploy", "helm", "trellis")
	if out, err := exec.Command(helm, "lint", "--strict", chartDir).CombinedOutput(); err != nil {
		t.Errorf("helm lint --strict: %v\n%s", err, out)
	}
	for name, tc := range chartCases {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", "trellis", chartDir, "--include-crds", "--namespace", tc.ns, "--set", "namespace.create=true"}
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).Output()
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			rendered := parseDocs(t, string(out))
			cli := renderCLI(t, tc.ns, valuesWith(t, tc.sets...))
			compareObjects(t, withoutKeyMaterial(t, cli), withoutKeyMaterial(t, rendered))
			checkKeyMaterial(t, "helm", tc.ns, rendered)
		})
	}
}
