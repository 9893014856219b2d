// Package ctl holds trellisctl's commands: a kumactl-like CLI over the
// control plane's REST API (config control-planes, apply, get, delete,
// inspect, version, completion). cmd/trellisctl is a thin main around Run.
package ctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// Environment variables trellisctl reads.
const (
	// EnvAPIURL overrides the control plane address from the config file.
	EnvAPIURL = "TRELLIS_API_URL"
	// EnvConfig names the config file (default ~/.trellisctl/config).
	EnvConfig = "TRELLISCTL_CONFIG"
	// EnvAPIToken is the user token sent as a bearer token (overrides the
	// config file's; --token and --token-file override it).
	EnvAPIToken = "TRELLIS_API_TOKEN"
	// EnvAPICACertFile is the CA certificate that verifies an HTTPS control
	// plane (overrides the config file's; --ca-cert-file overrides it).
	EnvAPICACertFile = "TRELLIS_API_CA_CERT_FILE"
)

// DefaultAPIURL is used when neither flag, environment nor config name a
// control plane: trellis-cp's default API address.
const DefaultAPIURL = "http://127.0.0.1:5681"

// Options are the process's surroundings, injectable for tests. Zero
// fields take the real process's values.
type Options struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// HomeDir returns the user's home directory (default os.UserHomeDir).
	HomeDir func() (string, error)
	// HTTPClient overrides the client used to reach control planes; its
	// Timeout is left as given.
	HTTPClient *http.Client
	// Registry is the table of kinds (default kinds.Registry()).
	Registry *resource.Registry
}

func (o Options) withDefaults() Options {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.HomeDir == nil {
		o.HomeDir = os.UserHomeDir
	}
	if o.Registry == nil {
		o.Registry = kinds.Registry()
	}
	return o
}

// Run executes trellisctl with args (without the program name), prints any
// error to stderr and returns the process exit code.
func Run(ctx context.Context, opts Options, args []string) int {
	opts = opts.withDefaults()
	cmd, r := newRoot(opts)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(opts.Stderr, "Error: %s\n", r.describeError(err))
		return 1
	}
	return 0
}

// NewRootCommand returns the trellisctl command tree.
func NewRootCommand(opts Options) *cobra.Command {
	cmd, _ := newRoot(opts.withDefaults())
	return cmd
}

// root holds what every subcommand shares: global flags and surroundings.
type root struct {
	opts       Options
	reg        *resource.Registry
	apiURL     string
	configFile string
	timeout    time.Duration
	// Credentials from the command line; see resolveTarget.
	token      string
	tokenFile  string
	caCertFile string
	skipVerify bool
	// usedURL is the address the last API call went to, for error hints.
	usedURL string
}

func newRoot(opts Options) (*cobra.Command, *root) {
	r := &root{opts: opts, reg: opts.Registry}
	cmd := &cobra.Command{
		Use:   "trellisctl",
		Short: "Manage a Trellis service mesh",
		Long: "trellisctl manages Trellis (a Kuma 2.14-compatible universal service mesh) through the\n" +
			"control plane's REST API: apply and inspect meshes, dataplanes and policies.\n\n" +
			"The control plane address comes from --api-url, then $" + EnvAPIURL + ", then the current\n" +
			"control plane of the config file (see `trellisctl config control-planes`), then " + DefaultAPIURL + ".\n\n" +
			"Clients on the control plane's host need no credentials by default. Others need an admin\n" +
			"user token (--token, --token-file, $" + EnvAPIToken + " or the config file) and, for the HTTPS\n" +
			"address (port 5682), the CA certificate (--ca-cert-file, $" + EnvAPICACertFile + " or the config file).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(opts.Stdin)
	cmd.SetOut(opts.Stdout)
	cmd.SetErr(opts.Stderr)
	pf := cmd.PersistentFlags()
	pf.StringVar(&r.apiURL, "api-url", "", "control plane API address, e.g. http://127.0.0.1:5681 (overrides $"+EnvAPIURL+" and the config file)")
	pf.StringVar(&r.configFile, "config-file", "", "config file (default $"+EnvConfig+" or ~/.trellisctl/config)")
	pf.DurationVar(&r.timeout, "api-timeout", time.Minute, "timeout of each request to the control plane")
	pf.StringVar(&r.token, "token", "", "user token sent to the control plane (overrides $"+EnvAPIToken+" and the config file)")
	pf.StringVar(&r.tokenFile, "token-file", "", "file holding the user token, e.g. the control plane's <dataDir>/admin-user-token")
	pf.StringVar(&r.caCertFile, "ca-cert-file", "", "CA certificate that verifies an HTTPS control plane, e.g. its <dataDir>/certs/api-server.crt (overrides $"+EnvAPICACertFile+" and the config file)")
	pf.BoolVar(&r.skipVerify, "skip-verify", false, "do not verify the HTTPS control plane's certificate (insecure)")
	cmd.AddCommand(
		r.applyCmd(),
		r.getCmd(),
		r.deleteCmd(),
		r.inspectCmd(),
		r.configCmd(),
		r.versionCmd(),
		r.demoCmd(),
		r.generateCmd(),
		r.installCmd(),
		r.uninstallCmd(),
	)
	return cmd, r
}

// client returns an API client for the resolved control plane.
func (r *root) client() (*apiclient.Client, error) {
	t, err := r.resolveTarget()
	if err != nil {
		return nil, err
	}
	return r.clientFor(t)
}

// clientFor returns an API client for t: its TLS settings (unless the
// options carry an HTTP client) and its bearer token.
func (r *root) clientFor(t target) (*apiclient.Client, error) {
	r.usedURL = t.url
	hc := r.opts.HTTPClient
	if hc == nil {
		tlsCfg, err := apiclient.TLSConfig(t.caCertFile, t.skipVerify)
		if err != nil {
			return nil, err
		}
		hc = apiclient.NewHTTPClient(r.timeout, tlsCfg)
	}
	c := apiclient.New(t.url, hc)
	c.SetToken(t.token)
	return c, nil
}
