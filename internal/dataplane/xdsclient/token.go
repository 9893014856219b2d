package xdsclient

import (
	"fmt"
	"os"
	"strings"
)

// TokenFile returns an Options.Token that reads the dataplane token from
// path at every call (surrounding blanks trimmed), so a token renewed in
// place is used from the next connect on.
func TokenFile(path string) func() (string, error) {
	return func() (string, error) {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("reading the dataplane token: %w", err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
}
