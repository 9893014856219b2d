package ctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"sigs.k8s.io/yaml"
)

// Config is trellisctl's config file, in kumactl's layout so that a
// kumactl config reads the same: named control planes, contexts pointing
// at them, and the current context.
type Config struct {
	ControlPlanes  []ControlPlane `json:"controlPlanes"`
	Contexts       []Context      `json:"contexts"`
	CurrentContext string         `json:"currentContext"`
}

// ControlPlane is one named control plane.
type ControlPlane struct {
	Name        string      `json:"name"`
	Coordinates Coordinates `json:"coordinates"`
}

// Coordinates say how to reach a control plane.
type Coordinates struct {
	APIServer APIServer `json:"apiServer"`
}

// APIServer is a control plane's REST API address and how to
// authenticate to it, with kumactl's field names.
type APIServer struct {
	URL string `json:"url"`
	// CACertFile verifies an HTTPS URL (a path; the file is not copied).
	CACertFile string `json:"caCertFile,omitempty"`
	// SkipVerify turns off the check of the server's certificate.
	SkipVerify bool `json:"skipVerify,omitempty"`
	// AuthType is "tokens" (a user token in AuthConf["token"]) or empty.
	AuthType string            `json:"authType,omitempty"`
	AuthConf map[string]string `json:"authConf,omitempty"`
}

// Context binds a name to a control plane; trellisctl (like kumactl)
// creates one context per control plane, named after it.
type Context struct {
	Name         string `json:"name"`
	ControlPlane string `json:"controlPlane"`
}

// defaultConfig is what trellisctl uses before any config file exists.
func defaultConfig() *Config {
	return &Config{
		ControlPlanes:  []ControlPlane{{Name: "local", Coordinates: Coordinates{APIServer: APIServer{URL: DefaultAPIURL}}}},
		Contexts:       []Context{{Name: "local", ControlPlane: "local"}},
		CurrentContext: "local",
	}
}

// current returns the control plane of the current context, or nil.
func (c *Config) current() *ControlPlane {
	for _, ctx := range c.Contexts {
		if ctx.Name == c.CurrentContext {
			return c.controlPlane(ctx.ControlPlane)
		}
	}
	return nil
}

func (c *Config) controlPlane(name string) *ControlPlane {
	for i := range c.ControlPlanes {
		if c.ControlPlanes[i].Name == name {
			return &c.ControlPlanes[i]
		}
	}
	return nil
}

// addControlPlane adds or (with overwrite) replaces a control plane and
// its context, and makes it current. It reports false when the name is
// taken and overwrite is not set.
func (c *Config) addControlPlane(cp ControlPlane, overwrite bool) bool {
	if existing := c.controlPlane(cp.Name); existing != nil {
		if !overwrite {
			return false
		}
		*existing = cp
	} else {
		c.ControlPlanes = append(c.ControlPlanes, cp)
	}
	c.Contexts = slices.DeleteFunc(c.Contexts, func(x Context) bool { return x.Name == cp.Name })
	c.Contexts = append(c.Contexts, Context{Name: cp.Name, ControlPlane: cp.Name})
	c.CurrentContext = cp.Name
	return true
}

// switchTo makes the context of control plane name current.
func (c *Config) switchTo(name string) bool {
	for _, ctx := range c.Contexts {
		if ctx.ControlPlane == name || ctx.Name == name {
			c.CurrentContext = ctx.Name
			return true
		}
	}
	if c.controlPlane(name) != nil {
		c.Contexts = append(c.Contexts, Context{Name: name, ControlPlane: name})
		c.CurrentContext = name
		return true
	}
	return false
}

// removeControlPlane removes a control plane and its contexts; when the
// current context goes, the first remaining one becomes current.
func (c *Config) removeControlPlane(name string) bool {
	if c.controlPlane(name) == nil {
		return false
	}
	c.ControlPlanes = slices.DeleteFunc(c.ControlPlanes, func(x ControlPlane) bool { return x.Name == name })
	c.Contexts = slices.DeleteFunc(c.Contexts, func(x Context) bool { return x.ControlPlane == name })
	if !slices.ContainsFunc(c.Contexts, func(x Context) bool { return x.Name == c.CurrentContext }) {
		c.CurrentContext = ""
		if len(c.Contexts) > 0 {
			c.CurrentContext = c.Contexts[0].Name
		}
	}
	return true
}

// configPath returns the config file's path: --config-file, then
// $TRELLISCTL_CONFIG, then ~/.trellisctl/config.
func (r *root) configPath() (string, error) {
	if r.configFile != "" {
		return r.configFile, nil
	}
	if v := r.opts.Getenv(EnvConfig); v != "" {
		return v, nil
	}
	home, err := r.opts.HomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the config file: %w (set $%s or --config-file)", err, EnvConfig)
	}
	return filepath.Join(home, ".trellisctl", "config"), nil
}

// loadConfig reads the config file; a missing file yields the default
// config (one "local" control plane at DefaultAPIURL).
func (r *root) loadConfig() (*Config, string, error) {
	path, err := r.configPath()
	if err != nil {
		return nil, "", err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return defaultConfig(), path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("reading the config file: %w", err)
	}
	cfg := &Config{}
	if err := yaml.Unmarshal(data, cfg); err != nil {
		return nil, path, fmt.Errorf("reading the config file %s: %w", path, err)
	}
	return cfg, path, nil
}

// saveConfig writes the config file atomically, creating its directory.
func saveConfig(path string, cfg *Config) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the config directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the config file: %w", err)
	}
	return nil
}
