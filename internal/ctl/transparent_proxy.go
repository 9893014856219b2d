package ctl

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/transparentproxy"
)

// installCmd is `trellisctl install`: host set-up; today the transparent
// proxy.
func (r *root) installCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install Trellis: the control plane on Kubernetes (manifests), or host set-up for the data plane (transparent proxy)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(r.installTransparentProxyCmd(), r.installControlPlaneCmd(), r.installCRDsCmd())
	return cmd
}

// uninstallCmd is `trellisctl uninstall`, the inverse of install.
func (r *root) uninstallCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove host set-up installed by `trellisctl install`",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(r.uninstallTransparentProxyCmd())
	return cmd
}

// tpFlags are the flags of install transparent-proxy, as strings where
// the command parses and checks them itself (to name the flag in errors).
type tpFlags struct {
	cfg                       transparentproxy.Config
	inbound, outbound, dns    uint16
	dpUser, dpUID             string
	exclIn, exclOut, exclUIDs []string
	exclInIPs, exclOutIPs     []string
}

func (r *root) installTransparentProxyCmd() *cobra.Command {
	var f tpFlags
	cmd := &cobra.Command{
		Use:   "transparent-proxy",
		Short: "Redirect this host's (or network namespace's) traffic through the sidecar with iptables",
		Long: "Installs nat-table rules (chains TRELLIS_INBOUND, TRELLIS_OUTBOUND, ...) that redirect inbound TCP\n" +
			"to the sidecar's inbound port, outbound TCP to its outbound port and, with --redirect-dns, DNS\n" +
			"(UDP and TCP port 53) to its DNS port. Traffic of the sidecar's user (--dp-user or --dp-uid) is\n" +
			"never redirected, so run trellis-dp as that user. IPv4 and, in dualstack mode, IPv6.\n\n" +
			"Needs root and iptables-restore (Debian package iptables). Running it again replaces the rules;\n" +
			"`trellisctl uninstall transparent-proxy` removes them without a trace. --dry-run prints the\n" +
			"rules (iptables-restore input) and changes nothing. Kuma's flag names --kuma-dp-user and\n" +
			"--kuma-dp-uid are accepted too.\n\n" +
			"Example:\n  sudo trellisctl install transparent-proxy --dp-user trellis-dp --redirect-dns --exclude-inbound-ports 22",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			res, err := transparentproxy.Installer{Log: warnLogger(cmd.ErrOrStderr())}.Install(cmd.Context(), cfg)
			if err != nil {
				return flagError(err)
			}
			return printTPResult(cmd.OutOrStdout(), res, cfg.DryRun, "installed")
		},
	}
	fl := cmd.Flags()
	fl.Uint16Var(&f.inbound, "redirect-inbound-port", transparentproxy.DefaultRedirectPortInbound, "port inbound TCP is redirected to (the sidecar's networking.transparentProxying.redirectPortInbound)")
	fl.Uint16Var(&f.outbound, "redirect-outbound-port", transparentproxy.DefaultRedirectPortOutbound, "port outbound TCP is redirected to (redirectPortOutbound)")
	fl.BoolVar(&f.cfg.RedirectDNS, "redirect-dns", false, "redirect DNS queries (UDP and TCP port 53) to the sidecar's DNS server")
	fl.Uint16Var(&f.dns, "redirect-dns-port", transparentproxy.DefaultRedirectPortDNS, "port DNS is redirected to (on 127.0.0.1 and ::1)")
	fl.StringVar(&f.dpUser, "dp-user", "", "user the sidecar runs as, name or uid; its traffic is not redirected (default \""+transparentproxy.DefaultDPUser+"\")")
	fl.StringVar(&f.dpUID, "dp-uid", "", "uid the sidecar runs as (instead of --dp-user)")
	fl.StringVar(&f.dpUser, "kuma-dp-user", "", "alias of --dp-user (Kuma's name)")
	fl.StringVar(&f.dpUID, "kuma-dp-uid", "", "alias of --dp-uid (Kuma's name)")
	_ = fl.MarkHidden("kuma-dp-user")
	_ = fl.MarkHidden("kuma-dp-uid")
	fl.StringSliceVar(&f.exclIn, "exclude-inbound-ports", nil, "inbound TCP ports not redirected, comma-separated (e.g. 22)")
	fl.StringSliceVar(&f.exclOut, "exclude-outbound-ports", nil, "outbound TCP ports not redirected, comma-separated")
	fl.StringSliceVar(&f.exclUIDs, "exclude-outbound-uids", nil, "uids whose traffic (DNS included) is not redirected, comma-separated")
	fl.StringSliceVar(&f.exclInIPs, "exclude-inbound-ips", nil, "source addresses or CIDRs whose inbound TCP is not redirected")
	fl.StringSliceVar(&f.exclOutIPs, "exclude-outbound-ips", nil, "destination addresses or CIDRs outbound TCP reaches directly")
	fl.StringVar(&f.cfg.IPFamilyMode, "ip-family-mode", transparentproxy.IPFamilyDualStack, "dualstack (IPv4 and IPv6 rules) or ipv4")
	fl.BoolVar(&f.cfg.DryRun, "dry-run", false, "print the rules (iptables-restore input) and change nothing")
	return cmd
}

// config turns the flags into a Config; errors name the flag.
func (f *tpFlags) config() (transparentproxy.Config, error) {
	c := f.cfg
	for name, p := range map[string]*uint16{"redirect-inbound-port": &f.inbound, "redirect-outbound-port": &f.outbound,
		"redirect-dns-port": &f.dns} {
		if *p == 0 {
			return c, fmt.Errorf("--%s: 0 is not a valid port (1-65535)", name)
		}
	}
	c.RedirectPortInbound, c.RedirectPortOutbound, c.RedirectPortDNS = f.inbound, f.outbound, f.dns
	switch {
	case f.dpUID != "" && f.dpUser != "":
		return c, fmt.Errorf("--dp-uid and --dp-user: give one of them")
	case f.dpUID != "":
		if _, err := strconv.ParseUint(f.dpUID, 10, 32); err != nil {
			return c, fmt.Errorf("--dp-uid: %q is not a uid (a number)", f.dpUID)
		}
		c.DPUser = f.dpUID
	default:
		c.DPUser = f.dpUser
	}
	var err error
	if c.ExcludeInboundPorts, err = parsePorts("exclude-inbound-ports", f.exclIn); err != nil {
		return c, err
	}
	if c.ExcludeOutboundPorts, err = parsePorts("exclude-outbound-ports", f.exclOut); err != nil {
		return c, err
	}
	for _, s := range f.exclUIDs {
		u, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
		if err != nil {
			return c, fmt.Errorf("--exclude-outbound-uids: %q is not a uid (a number)", s)
		}
		c.ExcludeOutboundUIDs = append(c.ExcludeOutboundUIDs, uint32(u))
	}
	if c.ExcludeInboundIPs, err = parsePrefixes("exclude-inbound-ips", f.exclInIPs); err != nil {
		return c, err
	}
	if c.ExcludeOutboundIPs, err = parsePrefixes("exclude-outbound-ips", f.exclOutIPs); err != nil {
		return c, err
	}
	return c, nil
}

// tpFlagOf maps Config fields to the flags that set them.
var tpFlagOf = map[string]string{
	"redirectPortInbound": "redirect-inbound-port", "redirectPortOutbound": "redirect-outbound-port",
	"redirectPortDNS": "redirect-dns-port", "dpUser": "dp-user", "ipFamilyMode": "ip-family-mode",
	"excludeInboundPorts": "exclude-inbound-ports", "excludeOutboundPorts": "exclude-outbound-ports",
	"excludeInboundIPs": "exclude-inbound-ips", "excludeOutboundIPs": "exclude-outbound-ips",
}

// flagError rewrites a Config field error to name the flag.
func flagError(err error) error {
	var fe *transparentproxy.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	field, _, _ := strings.Cut(fe.Field, "[")
	if flag, ok := tpFlagOf[field]; ok {
		reason := fe.Reason
		for f, fl := range tpFlagOf {
			reason = strings.ReplaceAll(reason, " "+f, " --"+fl)
		}
		return fmt.Errorf("--%s: %s", flag, reason)
	}
	return err
}

// parsePorts parses a list of ports 1-65535.
func parsePorts(flag string, in []string) ([]uint16, error) {
	var out []uint16
	for _, s := range in {
		p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("--%s: %q is not a port (1-65535)", flag, s)
		}
		out = append(out, uint16(p))
	}
	return out, nil
}

// parsePrefixes parses addresses (as /32 or /128) and CIDRs.
func parsePrefixes(flag string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		s = strings.TrimSpace(s)
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not an address or CIDR", flag, s)
		}
		out = append(out, p)
	}
	return out, nil
}

func (r *root) uninstallTransparentProxyCmd() *cobra.Command {
	var cfg transparentproxy.Config
	cmd := &cobra.Command{
		Use:   "transparent-proxy",
		Short: "Remove the transparent-proxy iptables rules",
		Long: "Removes every nat-table chain named TRELLIS_* and the rules jumping to them, for IPv4 and IPv6,\n" +
			"one atomic iptables-restore per family; iptables-save then prints what it printed before install.\n" +
			"Removing nothing is not an error. --dry-run prints what would be applied.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := transparentproxy.Installer{Log: warnLogger(cmd.ErrOrStderr())}.Uninstall(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printTPResult(cmd.OutOrStdout(), res, cfg.DryRun, "removed")
		},
	}
	cmd.Flags().StringVar(&cfg.IPFamilyMode, "ip-family-mode", transparentproxy.IPFamilyDualStack, "dualstack (IPv4 and IPv6) or ipv4")
	cmd.Flags().BoolVar(&cfg.DryRun, "dry-run", false, "print what would be removed and change nothing")
	return cmd
}

// printTPResult prints the rules (dry run) or one line per family.
func printTPResult(w io.Writer, res transparentproxy.Result, dryRun bool, done string) error {
	for _, fr := range res {
		var err error
		switch {
		case fr.Skipped != "":
			_, err = fmt.Fprintf(w, "# %s: skipped: %s\n", fr.Family.Name, fr.Skipped)
		case dryRun:
			_, err = io.WriteString(w, fr.Applied)
		default:
			_, err = fmt.Fprintf(w, "transparent proxy %s (%s)\n", done, fr.Family.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// warnLogger logs warnings and errors as text to w.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
