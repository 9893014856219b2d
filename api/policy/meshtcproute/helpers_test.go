package meshtcproute_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// mustDecode decodes a valid manifest and checks that its spec encodes back
// to the same JSON the user wrote.
func mustDecode(t *testing.T, manifest string) *resource.Resource {
	t.Helper()
	return p1test.MustDecode(t, manifest)
}

// violations decodes a manifest that must be rejected and returns its
// violations.
func violations(t *testing.T, manifest string) []validate.Violation {
	t.Helper()
	_, err := p1test.Decode(t, manifest)
	if err == nil {
		t.Fatalf("decode succeeded, want a validation error")
	}
	return p1test.Violations(t, err)
}

// expectViolation checks that decoding manifest fails with a violation at
// field whose reason contains reason.
func expectViolation(t *testing.T, manifest, field, reason string) {
	t.Helper()
	p1test.ExpectViolation(t, func() error { _, err := p1test.Decode(t, manifest); return err }(), field, reason)
}

// TestKumaExamples checks this kind's shared example manifests.
func TestKumaExamples(t *testing.T) { p1test.RunTestdata(t, "meshtcproute") }
