// Package version holds the build's version, set at link time with
// -ldflags "-X github.com/trellis-mesh/trellis/internal/version.Version=v0.1.0".
package version

import "runtime/debug"

// Version is the release version; "dev" for untagged builds.
var Version = "dev"

// Commit returns the VCS revision the binary was built from, when known.
func Commit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
