// Package config holds trellis-cp's configuration: documented defaults,
// overridden by a YAML file, overridden by TRELLIS_* environment variables.
// Every file key maps to exactly one variable (store.type ↔
// TRELLIS_STORE_TYPE), listed in one table that also renders the defaults
// file (`trellis-cp config defaults`).
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/vip"
)

// Store types.
const (
	StoreMemory   = "memory"
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Config is trellis-cp's whole configuration.
type Config struct {
	// DataDir holds what the control plane generates for itself.
	DataDir   string    `json:"dataDir"`
	APIServer APIServer `json:"apiServer"`
	DPServer  DPServer  `json:"dpServer"`
	KDS       KDS       `json:"kds"`
	// Mode is standalone, global or zone; Multizone configures the last two.
	Mode      string    `json:"mode"`
	Multizone Multizone `json:"multizone"`
	Store     Store     `json:"store"`
	Log       Log       `json:"log"`
	Defaults  Defaults  `json:"defaults"`
	// Diagnostics serves profiling endpoints when its address is set.
	Diagnostics Diagnostics `json:"diagnostics"`
	// DNSServer configures the services' virtual IPs and mesh DNS names.
	DNSServer DNSServer `json:"dnsServer"`
	// Shutdown is how long SIGTERM waits for in-flight work.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// Environment is universal or kubernetes (kubernetes.go).
	Environment string     `json:"environment"`
	Kubernetes  Kubernetes `json:"kubernetes"`
}

// APIServer configures the REST API.
type APIServer struct {
	HTTP  Listener      `json:"http"`
	HTTPS HTTPSListener `json:"https"`
	Authn APIAuthn      `json:"authn"`
}

// HTTPSListener is the API's HTTPS address and certificate. Without a
// certificate, one is generated into DataDir/certs.
type HTTPSListener struct {
	Address     string `json:"address"`
	TLSCertFile string `json:"tlsCertFile"`
	TLSKeyFile  string `json:"tlsKeyFile"`
}

// APIAuthn configures who may call the API: clients with an admin user
// token, and (when LocalhostIsAdmin) any client on a loopback address.
type APIAuthn struct {
	LocalhostIsAdmin bool `json:"localhostIsAdmin"`
}

// Listener is one listening address.
type Listener struct {
	Address string `json:"address"`
}

// DPServer configures the server data plane proxies connect to.
type DPServer struct {
	Address             string   `json:"address"`
	AdvertisedAddress   string   `json:"advertisedAddress"`
	TLSCertFile         string   `json:"tlsCertFile"`
	TLSKeyFile          string   `json:"tlsKeyFile"`
	TestHooks           bool     `json:"testHooks"`
	DeregistrationDelay Duration `json:"deregistrationDelay"`
	Authn               DPAuthn  `json:"authn"`
	// StatsFlushInterval is how often proxies stream their metrics to the
	// control plane (the bootstrap's stats_flush_interval).
	StatsFlushInterval Duration `json:"statsFlushInterval"`
}

// DP server authentication types.
const (
	// DPAuthnToken requires a dataplane token from every proxy.
	DPAuthnToken = "dpToken"
	// DPAuthnNone lets any proxy that reaches the DP server register.
	DPAuthnNone = "none"
)

// DPAuthn configures how proxies prove who they are to the DP server.
type DPAuthn struct {
	// Type is dpToken or none.
	Type string `json:"type"`
}

// KDS configures zone ↔ global sync (global mode).
type KDS struct {
	Address string `json:"address"`
}

// Store picks and configures the resource store.
type Store struct {
	Type     string   `json:"type"`
	SQLite   SQLite   `json:"sqlite"`
	Postgres Postgres `json:"postgres"`
}

// SQLite configures the embedded store.
type SQLite struct {
	// Path of the database file; empty means DataDir/trellis.db.
	Path string `json:"path"`
}

// Postgres configures the PostgreSQL store.
type Postgres struct {
	URL string `json:"url"`
}

// Log configures logging.
type Log struct {
	Level  string `json:"level"`
	Format string `json:"format"`
}

// Defaults configures what the control plane creates on its own.
type Defaults struct {
	SkipMeshCreation bool `json:"skipMeshCreation"`
}

// Diagnostics configures the diagnostics server: Go's net/http/pprof
// handlers under /debug/pprof/, for profiling the control plane. Off
// (empty address) by default: profiles expose internals, so bind it to
// loopback.
type Diagnostics struct {
	Address string `json:"address"`
}

// DNSServer configures the virtual IPs the control plane allocates to the
// services of each mesh and the DNS names sidecars answer for them, as
// Kuma's dnsServer settings do (internal/vip). Every instance sharing a
// store must use the same values.
type DNSServer struct {
	// Domain is the suffix of the names: <service>.<domain>.
	Domain string `json:"domain"`
	// CIDR is the IPv4 range virtual IPs are allocated from.
	CIDR string `json:"CIDR"`
	// CIDRv6 is the IPv6 prefix (/96 or larger) each virtual IP's IPv6
	// address is derived in (the IPv4 address in its low 32 bits); empty
	// means IPv4 only.
	CIDRv6 string `json:"CIDRv6"`
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("duration must be a string such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir: "",
		APIServer: APIServer{
			HTTP:  Listener{Address: "127.0.0.1:5681"},
			HTTPS: HTTPSListener{Address: ":5682"},
			Authn: APIAuthn{LocalhostIsAdmin: true},
		},
		DPServer: DPServer{Address: ":5678", DeregistrationDelay: Duration(10 * time.Second), Authn: DPAuthn{Type: DPAuthnToken},
			StatsFlushInterval: Duration(10 * time.Second)},
		KDS:             KDS{Address: ":5685"},
		Mode:            ModeStandalone,
		Store:           Store{Type: StoreSQLite},
		Log:             Log{Level: "info", Format: "text"},
		ShutdownTimeout: Duration(4 * time.Second),
		DNSServer:       DNSServer{Domain: vip.DefaultDomain, CIDR: vip.DefaultCIDR, CIDRv6: vip.DefaultCIDRv6},
		Environment:     EnvUniversal,
		Kubernetes:      defaultKubernetes(),
	}
}

// Load builds the configuration: defaults, then the YAML file at path (if
// not empty), then environment variables from getenv. It resolves derived
// defaults (data dir, SQLite path) and validates the result.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config file: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return cfg, err
	}
	if err := cfg.resolve(getenv); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func (c *Config) resolve(getenv func(string) string) error {
	c.resolveEnvironment()
	if c.DataDir == "" {
		if x := getenv("XDG_DATA_HOME"); x != "" {
			c.DataDir = filepath.Join(x, "trellis")
		} else {
			home := getenv("HOME")
			if home == "" {
				h, err := os.UserHomeDir()
				if err != nil {
					return fmt.Errorf("dataDir: not set and no home directory to default to: %w", err)
				}
				home = h
			}
			c.DataDir = filepath.Join(home, ".local", "share", "trellis")
		}
	}
	if c.Store.SQLite.Path == "" {
		c.Store.SQLite.Path = filepath.Join(c.DataDir, "trellis.db")
	}
	return nil
}

// Validate checks every setting and names the bad ones.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", key, envFor(key), fmt.Sprintf(format, args...)))
	}
	switch c.Store.Type {
	case StoreMemory, StoreSQLite, StoreKubernetes:
	case StorePostgres:
		if c.Store.Postgres.URL == "" {
			bad("store.postgres.url", "must be set when store.type is postgres")
		}
	default:
		bad("store.type", "unknown value %q: must be one of memory, sqlite, postgres, kubernetes", c.Store.Type)
	}
	for key, addr := range map[string]string{
		"apiServer.http.address":  c.APIServer.HTTP.Address,
		"apiServer.https.address": c.APIServer.HTTPS.Address,
		"dpServer.address":        c.DPServer.Address,
		"kds.address":             c.KDS.Address,
	} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "must be host:port: %v", err)
		}
	}
	if c.Diagnostics.Address != "" {
		if _, _, err := net.SplitHostPort(c.Diagnostics.Address); err != nil {
			bad("diagnostics.address", "must be host:port or empty: %v", err)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "unknown value %q: must be one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "unknown value %q: must be text or json", c.Log.Format)
	}
	if (c.APIServer.HTTPS.TLSCertFile == "") != (c.APIServer.HTTPS.TLSKeyFile == "") {
		bad("apiServer.https.tlsCertFile", "tlsCertFile and tlsKeyFile must be set together")
	}
	if (c.DPServer.TLSCertFile == "") != (c.DPServer.TLSKeyFile == "") {
		bad("dpServer.tlsCertFile", "tlsCertFile and tlsKeyFile must be set together")
	}
	switch c.DPServer.Authn.Type {
	case DPAuthnToken, DPAuthnNone:
	default:
		bad("dpServer.authn.type", "unknown value %q: must be dpToken or none", c.DPServer.Authn.Type)
	}
	if c.DPServer.DeregistrationDelay < 0 {
		bad("dpServer.deregistrationDelay", "must not be negative")
	}
	if c.DPServer.StatsFlushInterval < Duration(100*time.Millisecond) {
		bad("dpServer.statsFlushInterval", "must be at least 100ms")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdownTimeout", "must be positive")
	}
	if _, err := c.DNSServer.VIPConfig(); err != nil {
		bad("dnsServer", "%v", err)
	}
	c.validateKubernetes(bad)
	c.validateMultizone(bad)
	return errors.Join(errs...)
}

// VIPConfig parses the settings for the VIP allocator.
func (d DNSServer) VIPConfig() (vip.Config, error) {
	return vip.ParseConfig(d.Domain, d.CIDR, d.CIDRv6)
}
