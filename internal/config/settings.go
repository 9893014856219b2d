package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// setting is one configuration key: its file path, its environment
// variable, its documentation and how to read and write it.
type setting struct {
	key string
	env string
	doc string
	get func(*Config) string
	set func(*Config, string) error
	// plain values are written unquoted in YAML (booleans).
	plain bool
}

func str(p func(*Config) *string) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return *p(c) },
		func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *Duration) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return time.Duration(*p(c)).String() },
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("must be a duration such as 10s: %w", err)
			}
			*p(c) = Duration(d)
			return nil
		}
}

func boolean(p func(*Config) *bool) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.FormatBool(*p(c)) },
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("must be true or false")
			}
			*p(c) = b
			return nil
		}
}

func mk(key, env, doc string, gs func() (func(*Config) string, func(*Config, string) error)) setting {
	g, s := gs()
	return setting{key: key, env: env, doc: doc, get: g, set: s}
}

// settings is the one table of every key, in the order the defaults file shows them.
var settings = []setting{
	mk("dataDir", "TRELLIS_DATA_DIR", "Folder for what the control plane generates for itself (TLS certificates under certs/, the SQLite file). Empty: $XDG_DATA_HOME/trellis, else ~/.local/share/trellis.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DataDir })
		}),
	mk("apiServer.http.address", "TRELLIS_API_HTTP_ADDR", "Address of the REST API (plain HTTP, loopback by default).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.APIServer.HTTP.Address })
		}),
	mk("apiServer.https.address", "TRELLIS_API_HTTPS_ADDR", "Address of the REST API over HTTPS, for remote clients (they need an admin user token).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.APIServer.HTTPS.Address })
		}),
	mk("apiServer.https.tlsCertFile", "TRELLIS_API_HTTPS_CERT_FILE", "PEM certificate of the HTTPS API. Empty: generated on first start as <dataDir>/certs/api-server.crt (pass that file to trellisctl --ca-cert-file).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.APIServer.HTTPS.TLSCertFile })
		}),
	mk("apiServer.https.tlsKeyFile", "TRELLIS_API_HTTPS_KEY_FILE", "PEM key of the HTTPS API certificate; set with tlsCertFile.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.APIServer.HTTPS.TLSKeyFile })
		}),
	plainSetting(mk("apiServer.authn.localhostIsAdmin", "TRELLIS_API_AUTHN_LOCALHOST_IS_ADMIN", "Requests from a loopback address need no token (they act as admin). Other clients always need an admin user token (Authorization: Bearer); the first start writes one to <dataDir>/admin-user-token.",
		func() (func(*Config) string, func(*Config, string) error) {
			return boolean(func(c *Config) *bool { return &c.APIServer.Authn.LocalhostIsAdmin })
		})),
	mk("dpServer.address", "TRELLIS_DP_SERVER_ADDR", "Address of the data plane server (xDS over gRPC and POST /bootstrap, TLS).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DPServer.Address })
		}),
	mk("dpServer.advertisedAddress", "TRELLIS_DP_SERVER_ADVERTISED_ADDR", "host:port proxies use to reach the data plane server, written into their bootstrap. Empty: the listening address (127.0.0.1 when it listens on all interfaces).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DPServer.AdvertisedAddress })
		}),
	mk("dpServer.tlsCertFile", "TRELLIS_DP_SERVER_TLS_CERT_FILE", "PEM certificate of the data plane server. Empty: generated on first start as <dataDir>/certs/dp-server.crt (pass that file to trellis-dp --ca-cert-file).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DPServer.TLSCertFile })
		}),
	mk("dpServer.tlsKeyFile", "TRELLIS_DP_SERVER_TLS_KEY_FILE", "PEM key of the data plane server certificate; set with tlsCertFile.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DPServer.TLSKeyFile })
		}),
	plainSetting(mk("dpServer.testHooks", "TRELLIS_DP_SERVER_TEST_HOOKS", "Tests only: serve /_testhooks/ on the API, which can push a config proxies must refuse.",
		func() (func(*Config) string, func(*Config, string) error) {
			return boolean(func(c *Config) *bool { return &c.DPServer.TestHooks })
		})),
	mk("dpServer.deregistrationDelay", "TRELLIS_DP_SERVER_DEREGISTRATION_DELAY", "How long after a proxy disconnects the Dataplane it registered is removed.",
		func() (func(*Config) string, func(*Config, string) error) {
			return dur(func(c *Config) *Duration { return &c.DPServer.DeregistrationDelay })
		}),
	mk("dpServer.authn.type", "TRELLIS_DP_SERVER_AUTHN", "How proxies authenticate to the data plane server: dpToken (a dataplane token from `trellisctl generate dataplane-token`, whose name, mesh and tags must match the Dataplane) or none (any proxy that reaches the server may register; tests and trusted networks only).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DPServer.Authn.Type })
		}),
	mk("dpServer.statsFlushInterval", "TRELLIS_DP_SERVER_STATS_FLUSH_INTERVAL", "How often proxies stream their metrics to the control plane (the bootstrap's stats_flush_interval; Envoy's metrics service). The service map's rates come from these samples.",
		func() (func(*Config) string, func(*Config, string) error) {
			return dur(func(c *Config) *Duration { return &c.DPServer.StatsFlushInterval })
		}),
	mk("kds.address", "TRELLIS_KDS_ADDR", "Address of the zone-to-global sync server (global mode).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.KDS.Address })
		}),
	mk("store.type", "TRELLIS_STORE_TYPE", "Resource store: memory (lost on exit), sqlite (embedded, a file), postgres, or kubernetes (kuma.io custom resources; set by environment kubernetes).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.Store.Type })
		}),
	mk("store.sqlite.path", "TRELLIS_STORE_SQLITE_PATH", "SQLite database file. Empty: <dataDir>/trellis.db.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.Store.SQLite.Path })
		}),
	mk("store.postgres.url", "TRELLIS_STORE_POSTGRES_URL", "PostgreSQL connection URL, e.g. postgres://user:pass@host:5432/trellis?sslmode=disable.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.Store.Postgres.URL })
		}),
	mk("log.level", "TRELLIS_LOG_LEVEL", "Log level: debug, info, warn or error.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.Log.Level })
		}),
	mk("log.format", "TRELLIS_LOG_FORMAT", "Log format: text or json.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.Log.Format })
		}),
	plainSetting(mk("defaults.skipMeshCreation", "TRELLIS_DEFAULTS_SKIP_MESH_CREATION", "Do not create the default mesh on first start.",
		func() (func(*Config) string, func(*Config, string) error) {
			return boolean(func(c *Config) *bool { return &c.Defaults.SkipMeshCreation })
		})),
	mk("diagnostics.address", "TRELLIS_DIAGNOSTICS_ADDR", "Address of the diagnostics server (Go pprof profiles under /debug/pprof/, plain HTTP, no authentication). Empty: off. Bind it to loopback, e.g. 127.0.0.1:5680.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.Diagnostics.Address })
		}),
	mk("dnsServer.domain", "TRELLIS_DNS_SERVER_DOMAIN", "DNS suffix of the services' names: sidecars of transparent proxies answer <service>.<domain> with the service's virtual IP.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DNSServer.Domain })
		}),
	mk("dnsServer.CIDR", "TRELLIS_DNS_SERVER_CIDR", "IPv4 range the services' virtual IPs are allocated from (the same on every instance sharing a store).",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DNSServer.CIDR })
		}),
	mk("dnsServer.CIDRv6", "TRELLIS_DNS_SERVER_CIDR_V6", "IPv6 prefix (/96 or larger) of the services' IPv6 virtual IPs: the IPv4 virtual IP in its low 32 bits. Empty: IPv4 only.",
		func() (func(*Config) string, func(*Config, string) error) {
			return str(func(c *Config) *string { return &c.DNSServer.CIDRv6 })
		}),
	mk("shutdownTimeout", "TRELLIS_SHUTDOWN_TIMEOUT", "How long SIGTERM waits for in-flight requests before the process exits.",
		func() (func(*Config) string, func(*Config, string) error) {
			return dur(func(c *Config) *Duration { return &c.ShutdownTimeout })
		}),
}

func plainSetting(s setting) setting {
	s.plain = true
	return s
}

func envFor(key string) string {
	for _, s := range settings {
		if s.key == key {
			return s.env
		}
	}
	return "no variable"
}

func applyEnv(c *Config, getenv func(string) string) error {
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.set(c, v); err != nil {
			return fmt.Errorf("%s (%s): %w", s.env, s.key, err)
		}
	}
	return nil
}

// DefaultsYAML renders the defaults file: every key as nested YAML with its
// value and a comment naming its environment variable and meaning.
func DefaultsYAML() string {
	cfg := Default()
	var b strings.Builder
	b.WriteString("# trellis-cp configuration defaults (`trellis-cp config defaults`).\n")
	b.WriteString("# Pass a file with --config; every key can also be set by the environment\n")
	b.WriteString("# variable named above it, which wins over the file.\n")
	var open []string
	for _, s := range settings {
		parts := strings.Split(s.key, ".")
		parents, leaf := parts[:len(parts)-1], parts[len(parts)-1]
		common := 0
		for common < len(open) && common < len(parents) && open[common] == parents[common] {
			common++
		}
		open = open[:common]
		for _, p := range parents[common:] {
			fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", len(open)), p)
			open = append(open, p)
		}
		ind := strings.Repeat("  ", len(open))
		val := s.get(&cfg)
		if !s.plain {
			val = strconv.Quote(val)
		}
		fmt.Fprintf(&b, "%s# %s\n%s# env: %s\n%s%s: %s\n", ind, s.doc, ind, s.env, ind, leaf, val)
	}
	return b.String()
}
