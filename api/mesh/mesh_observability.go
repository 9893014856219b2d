package mesh

import (
	"net/url"
	"regexp"

	"github.com/trellis-mesh/trellis/api/validate"
)

// This file holds the legacy observability backends of a Mesh (logging,
// tracing, metrics). Kuma 2.14 still accepts them; the Mesh* policies
// supersede them.

// Logging lists access-log backends.
type Logging struct {
	DefaultBackend string           `json:"defaultBackend,omitempty"`
	Backends       []LoggingBackend `json:"backends,omitempty"`
}

// Logging backend types.
const (
	LoggingFile = "file"
	LoggingTCP  = "tcp"
)

// LoggingBackend is one access-log sink.
type LoggingBackend struct {
	Name string `json:"name,omitempty"`
	// Format is an Envoy access-log format string.
	Format string `json:"format,omitempty"`
	// Type is "file" or "tcp".
	Type string              `json:"type,omitempty"`
	Conf *LoggingBackendConf `json:"conf,omitempty"`
}

// LoggingBackendConf is the union of the file and tcp configurations.
type LoggingBackendConf struct {
	// Path of the log file (file).
	Path string `json:"path,omitempty"`
	// Address HOST:PORT of the log collector (tcp).
	Address string `json:"address,omitempty"`
}

// Tracing lists tracing backends.
type Tracing struct {
	DefaultBackend string           `json:"defaultBackend,omitempty"`
	Backends       []TracingBackend `json:"backends,omitempty"`
}

// Tracing backend types.
const (
	TracingZipkin  = "zipkin"
	TracingDatadog = "datadog"
)

// TracingBackend is one tracing collector.
type TracingBackend struct {
	Name string `json:"name,omitempty"`
	// Sampling is the percentage of traces sent (0-100, default 100).
	Sampling *float64 `json:"sampling,omitempty"`
	// Type is "zipkin" or "datadog".
	Type string              `json:"type,omitempty"`
	Conf *TracingBackendConf `json:"conf,omitempty"`
}

// TracingBackendConf is the union of the zipkin and datadog configurations.
type TracingBackendConf struct {
	// URL of the Zipkin collector, with an explicit port (zipkin).
	URL string `json:"url,omitempty"`
	// TraceID128Bit generates 128-bit trace ids (zipkin).
	TraceID128Bit *bool `json:"traceId128bit,omitempty"`
	// APIVersion is httpJson (default), httpJsonV1 or httpProto (zipkin).
	APIVersion string `json:"apiVersion,omitempty"`
	// SharedSpanContext makes client and server spans share a context (zipkin).
	SharedSpanContext *bool `json:"sharedSpanContext,omitempty"`
	// Address of the Datadog agent (datadog).
	Address string `json:"address,omitempty"`
	// Port of the Datadog agent (datadog).
	Port *uint32 `json:"port,omitempty"`
	// SplitService splits service names by direction (datadog).
	SplitService *bool `json:"splitService,omitempty"`
}

// Metrics lists metrics backends.
type Metrics struct {
	EnabledBackend string           `json:"enabledBackend,omitempty"`
	Backends       []MetricsBackend `json:"backends,omitempty"`
}

// MetricsPrometheus is the only metrics backend type.
const MetricsPrometheus = "prometheus"

// MetricsBackend is one metrics backend; a Dataplane may carry one to
// override the mesh's.
type MetricsBackend struct {
	Name string          `json:"name,omitempty"`
	Type string          `json:"type,omitempty"`
	Conf *PrometheusConf `json:"conf,omitempty"`
}

// PrometheusConf configures the Prometheus endpoint of the proxies.
type PrometheusConf struct {
	Port      *uint32               `json:"port,omitempty"`
	Path      string                `json:"path,omitempty"`
	Tags      map[string]string     `json:"tags,omitempty"`
	SkipMTLS  *bool                 `json:"skipMTLS,omitempty"`
	Envoy     *PrometheusEnvoyConf  `json:"envoy,omitempty"`
	TLS       *PrometheusTLSConf    `json:"tls,omitempty"`
	Aggregate []PrometheusAggregate `json:"aggregate,omitempty"`
}

// PrometheusEnvoyConf filters Envoy's own metrics.
type PrometheusEnvoyConf struct {
	FilterRegex string `json:"filterRegex,omitempty"`
	UsedOnly    *bool  `json:"usedOnly,omitempty"`
}

// Prometheus TLS modes.
const (
	PrometheusTLSActiveMTLSBackend = "activeMTLSBackend"
	PrometheusTLSDelegated         = "delegated"
	PrometheusTLSDisabled          = "disabled"
)

// PrometheusTLSConf configures TLS of the metrics endpoint.
type PrometheusTLSConf struct {
	Mode string `json:"mode,omitempty"`
}

// PrometheusAggregate is an application endpoint whose metrics the proxy
// scrapes and merges into its own.
type PrometheusAggregate struct {
	Name    string  `json:"name,omitempty"`
	Address string  `json:"address,omitempty"`
	Port    *uint32 `json:"port,omitempty"`
	Path    string  `json:"path,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
}

func (l *Logging) validate(errs *validate.Errors, path validate.Path) {
	used := map[string]bool{}
	for i, b := range l.Backends {
		p := path.Field("backends").Index(i)
		b.validate(errs, p)
		if b.Name != "" && used[b.Name] {
			errs.Addf(p.Field("name"), "%q name is already used for another backend", b.Name)
		}
		used[b.Name] = true
	}
	if l.DefaultBackend != "" && !used[l.DefaultBackend] {
		errs.Add(path.Field("defaultBackend"), "has to be set to one of the logging backends in the mesh")
	}
}

func (b *LoggingBackend) validate(errs *validate.Errors, path validate.Path) {
	validate.Required(errs, path.Field("name"), b.Name)
	conf := b.Conf
	if conf == nil {
		conf = &LoggingBackendConf{}
	}
	cp := path.Field("conf")
	switch b.Type {
	case LoggingFile:
		notFor(errs, cp.Field("address"), conf.Address != "", b.Type)
		validate.Required(errs, cp.Field("path"), conf.Path)
	case LoggingTCP:
		notFor(errs, cp.Field("path"), conf.Path != "", b.Type)
		if validate.Required(errs, cp.Field("address"), conf.Address) {
			validateHostPort(errs, cp.Field("address"), conf.Address)
		}
	default:
		validate.Enum(errs, path.Field("type"), b.Type, LoggingTCP, LoggingFile)
	}
}

func (t *Tracing) validate(errs *validate.Errors, path validate.Path) {
	used := map[string]bool{}
	for i, b := range t.Backends {
		p := path.Field("backends").Index(i)
		b.validate(errs, p)
		if b.Name != "" && used[b.Name] {
			errs.Addf(p.Field("name"), "%q name is already used for another backend", b.Name)
		}
		used[b.Name] = true
	}
	if t.DefaultBackend != "" && !used[t.DefaultBackend] {
		errs.Add(path.Field("defaultBackend"), "has to be set to one of the tracing backends in the mesh")
	}
}

func (b *TracingBackend) validate(errs *validate.Errors, path validate.Path) {
	validate.Required(errs, path.Field("name"), b.Name)
	if b.Sampling != nil && (*b.Sampling < 0 || *b.Sampling > 100) {
		errs.Add(path.Field("sampling"), "has to be in [0.0 - 100.0] range")
	}
	conf := b.Conf
	if conf == nil {
		conf = &TracingBackendConf{}
	}
	cp := path.Field("conf")
	switch b.Type {
	case TracingZipkin:
		notFor(errs, cp.Field("address"), conf.Address != "", b.Type)
		notFor(errs, cp.Field("port"), conf.Port != nil, b.Type)
		notFor(errs, cp.Field("splitService"), conf.SplitService != nil, b.Type)
		if conf.APIVersion != "" {
			validate.Enum(errs, cp.Field("apiVersion"), conf.APIVersion, "httpJson", "httpJsonV1", "httpProto")
		}
		if !validate.Required(errs, cp.Field("url"), conf.URL) {
			return
		}
		if u, err := url.ParseRequestURI(conf.URL); err != nil || u.Host == "" {
			errs.Add(cp.Field("url"), "must be a valid URL")
		} else if u.Port() == "" {
			errs.Add(cp.Field("url"), "port has to be explicitly specified")
		}
	case TracingDatadog:
		notFor(errs, cp.Field("url"), conf.URL != "", b.Type)
		notFor(errs, cp.Field("apiVersion"), conf.APIVersion != "", b.Type)
		notFor(errs, cp.Field("traceId128bit"), conf.TraceID128Bit != nil, b.Type)
		notFor(errs, cp.Field("sharedSpanContext"), conf.SharedSpanContext != nil, b.Type)
		validate.Required(errs, cp.Field("address"), conf.Address)
		if conf.Port == nil {
			errs.Add(cp.Field("port"), "must be defined")
		} else {
			validate.Port(errs, cp.Field("port"), *conf.Port)
		}
	default:
		validate.Enum(errs, path.Field("type"), b.Type, TracingZipkin, TracingDatadog)
	}
}

func (m *Metrics) validate(errs *validate.Errors, path validate.Path) {
	used := map[string]bool{}
	for i, b := range m.Backends {
		p := path.Field("backends").Index(i)
		b.validate(errs, p)
		if b.Name != "" && used[b.Name] {
			errs.Addf(p.Field("name"), "%q name is already used for another backend", b.Name)
		}
		used[b.Name] = true
	}
	if m.EnabledBackend != "" && !used[m.EnabledBackend] {
		errs.Add(path.Field("enabledBackend"), "has to be set to one of the backends in the mesh")
	}
}

// validate checks a metrics backend; the name is optional (a Dataplane's
// override has none).
func (b *MetricsBackend) validate(errs *validate.Errors, path validate.Path) {
	if b.Type != MetricsPrometheus {
		validate.Enum(errs, path.Field("type"), b.Type, MetricsPrometheus)
		return
	}
	if b.Conf != nil {
		b.Conf.validate(errs, path.Field("conf"))
	}
}

func (c *PrometheusConf) validate(errs *validate.Errors, path validate.Path) {
	validatePortPtr(errs, path.Field("port"), c.Port)
	if c.Path != "" {
		validateURLPath(errs, path.Field("path"), c.Path)
	}
	if c.TLS != nil && c.TLS.Mode != "" {
		validate.Enum(errs, path.Field("tls").Field("mode"), c.TLS.Mode,
			PrometheusTLSActiveMTLSBackend, PrometheusTLSDelegated, PrometheusTLSDisabled)
	}
	if c.SkipMTLS != nil && c.TLS != nil {
		mode := c.TLS.Mode
		if mode == "" {
			mode = PrometheusTLSActiveMTLSBackend
		}
		agrees := (!*c.SkipMTLS && mode == PrometheusTLSActiveMTLSBackend) || (*c.SkipMTLS && mode == PrometheusTLSDisabled)
		if !agrees {
			errs.Add(path, "skipMTLS and tls configuration cannot be defined together")
		}
	}
	if c.Envoy != nil && c.Envoy.FilterRegex != "" {
		if _, err := regexp.Compile(c.Envoy.FilterRegex); err != nil {
			errs.Addf(path.Field("envoy").Field("filterRegex"), "provided regexp isn't correct: %v", err)
		}
	}
	used := map[string]bool{}
	for i, a := range c.Aggregate {
		p := path.Field("aggregate").Index(i)
		if used[a.Name] {
			errs.Addf(p.Field("name"), "duplicate entry: %s, values have to be unique", a.Name)
		}
		used[a.Name] = true
		validatePortPtr(errs, p.Field("port"), a.Port)
		if a.Path != "" {
			validateURLPath(errs, p.Field("path"), a.Path)
		}
	}
}
