// Package metrics serves trellis-dp's MeshMetric Prometheus endpoint: the
// proxy's own stats (stats.Store.Families, Envoy's names) narrowed by the
// MeshMetric profiles, merged with the metrics of the applications the
// MeshMetric lists, which it scrapes at every request, as kuma-dp's
// metrics hijacker does. The control plane describes the endpoint in the
// metadata of the listener "_kuma:metrics:prometheus:<clientId>"
// (docs/xds-contract.md, "MeshMetric").
package metrics

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// MetadataKey is the listener filter_metadata key of the endpoint's
// settings.
const MetadataKey = "trellis.io/meshmetric"

// Application is an application metrics endpoint to scrape.
type Application struct {
	// Name labels the application in logs.
	Name    string
	Address string
	Port    uint32
	Path    string
}

// URL is where the application's metrics are.
func (a Application) URL() string {
	return "http://" + net.JoinHostPort(a.Address, strconv.FormatUint(uint64(a.Port), 10)) + a.Path
}

// Selector matches Prometheus metric names (MeshMetric's profiles
// include/exclude).
type Selector struct {
	kind  string // Prefix, Regex, Exact, Contains
	match string
	re    *regexp.Regexp
}

// Matches reports whether name fits the selector.
func (s Selector) Matches(name string) bool {
	switch s.kind {
	case "Prefix":
		return strings.HasPrefix(name, s.match)
	case "Exact":
		return name == s.match
	case "Contains":
		return strings.Contains(name, s.match)
	case "Regex":
		return s.re.MatchString(name)
	}
	return false
}

// Settings are what the listener's metadata says about the endpoint.
type Settings struct {
	Applications     []Application
	Include, Exclude []Selector
}

// SettingsOf reads the settings from a listener's metadata; a listener
// without them has no applications and no selectors.
func SettingsOf(l *listenerv3.Listener) (Settings, error) {
	var s Settings
	st := l.GetMetadata().GetFilterMetadata()[MetadataKey]
	if st == nil {
		return s, nil
	}
	f := st.GetFields()
	for i, v := range f["applications"].GetListValue().GetValues() {
		a, err := applicationOf(v.GetStructValue())
		if err != nil {
			return s, fmt.Errorf("metadata %s.applications[%d].%w", MetadataKey, i, err)
		}
		s.Applications = append(s.Applications, a)
	}
	var err error
	if s.Include, err = selectorsOf(f["include"]); err != nil {
		return s, fmt.Errorf("metadata %s.include%w", MetadataKey, err)
	}
	if s.Exclude, err = selectorsOf(f["exclude"]); err != nil {
		return s, fmt.Errorf("metadata %s.exclude%w", MetadataKey, err)
	}
	return s, nil
}

func applicationOf(st *structpb.Struct) (Application, error) {
	f := st.GetFields()
	a := Application{
		Name:    f["name"].GetStringValue(),
		Address: f["address"].GetStringValue(),
		Path:    f["path"].GetStringValue(),
	}
	port := f["port"].GetNumberValue()
	if port < 1 || port > 65535 || port != float64(uint32(port)) {
		return a, fmt.Errorf("port: %v is not a port", port)
	}
	a.Port = uint32(port)
	if a.Address == "" {
		a.Address = "127.0.0.1"
	}
	if !strings.HasPrefix(a.Path, "/") {
		return a, fmt.Errorf("path: %q does not start with /", a.Path)
	}
	return a, nil
}

func selectorsOf(v *structpb.Value) ([]Selector, error) {
	var out []Selector
	for i, x := range v.GetListValue().GetValues() {
		f := x.GetStructValue().GetFields()
		s := Selector{kind: f["type"].GetStringValue(), match: f["match"].GetStringValue()}
		switch s.kind {
		case "Prefix", "Exact", "Contains":
		case "Regex":
			re, err := regexp.Compile(s.match)
			if err != nil {
				return nil, fmt.Errorf("[%d].match: %w", i, err)
			}
			s.re = re
		default:
			return nil, fmt.Errorf("[%d].type: %w: %q", i, errUnknownSelector, s.kind)
		}
		out = append(out, s)
	}
	return out, nil
}

var errUnknownSelector = errors.New("unknown selector type")

// anyMatches reports whether a selector of list matches name.
func anyMatches(list []Selector, name string) bool {
	for _, s := range list {
		if s.Matches(name) {
			return true
		}
	}
	return false
}
