// Package trellis embeds the Trellis Helm chart (this folder) so that
// `trellisctl install control-plane` starts from the chart's own
// values.yaml and CRDs, and tests can render its templates.
package trellis

import "embed"

// Files is the chart: Chart.yaml, values.yaml, templates/ and crds/.
//
//go:embed Chart.yaml values.yaml all:templates crds
var Files embed.FS
