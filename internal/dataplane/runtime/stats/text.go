package stats

import (
	"bufio"
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TextContentType is the Content-Type of the Prometheus text exposition
// format that WriteText writes.
const TextContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText writes fams in the Prometheus text exposition format (HELP
// and TYPE lines, then the series), in the order given.
func WriteText(w io.Writer, fams []*dto.MetricFamily) error {
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(bw, f); err != nil {
			return fmt.Errorf("writing metric family %s: %w", f.GetName(), err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	return nil
}
