package tokens

import "strings"

// parseDataplaneRevocations reads a revocation list: token IDs separated by
// commas and/or newlines; blanks around IDs and empty entries are ignored.
func parseDataplaneRevocations(data []byte) []string {
	fields := strings.FieldsFunc(string(data), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
