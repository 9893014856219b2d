package transparentproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Sentinel errors of Install and Uninstall, wrapped with details.
var (
	// ErrNotRoot: changing iptables needs root (CAP_NET_ADMIN).
	ErrNotRoot = errors.New("transparent proxy: changing iptables needs root")
	// ErrMissingBinary: an iptables binary is not on PATH.
	ErrMissingBinary = errors.New("transparent proxy: iptables binary not found")
	// ErrIPTables: an iptables command failed.
	ErrIPTables = errors.New("transparent proxy: iptables failed")
)

// FamilyResult is what Install or Uninstall did (or, in dry-run mode,
// would do) for one IP family.
type FamilyResult struct {
	Family Family
	// Applied is the iptables-restore input applied (or, dry-run, to apply);
	// empty when there was nothing to do.
	Applied string
	// Skipped says why the family was left alone (e.g. no IPv6), or "".
	Skipped string
}

// Result lists the per-family results, IPv4 first.
type Result []FamilyResult

// Installer applies and removes the rules. The zero value runs the real
// binaries found on PATH and logs with slog.Default().
type Installer struct {
	// Log receives one line per change; nil means slog.Default().
	Log *slog.Logger
}

func (in Installer) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.Default()
}

// Install validates c and installs its rules in the current network
// namespace, atomically per family (one iptables-restore --noflush run).
// A second Install replaces the rules of the first (the same config leaves
// the same rules; an IPv4-only install removes earlier IPv6 rules). In dry-run mode it only returns the rules.
func (in Installer) Install(ctx context.Context, c Config) (Result, error) {
	r, err := c.Resolve()
	if err != nil {
		return nil, err
	}
	var res Result
	for _, f := range r.Families() {
		if r.DryRun {
			res = append(res, FamilyResult{Family: f, Applied: r.RestoreInput(f)})
			continue
		}
		if err := checkCanApply(f); err != nil {
			if f.is6() && errors.Is(err, ErrMissingBinary) {
				in.log().Warn("transparent proxy: IPv6 rules not installed", "reason", err.Error())
				res = append(res, FamilyResult{Family: f, Skipped: err.Error()})
				continue
			}
			return res, err
		}
		if f.is6() {
			if why := ipv6Unavailable(ctx); why != "" {
				in.log().Warn("transparent proxy: IPv6 rules not installed", "reason", why)
				res = append(res, FamilyResult{Family: f, Skipped: why})
				continue
			}
		}
		st, err := readState(ctx, f)
		if err != nil {
			return res, err
		}
		tx := r.installTx(f, st)
		if err := restore(ctx, f, tx, true); err != nil {
			return res, err
		}
		if err := in.addPassthroughSource(ctx, f); err != nil {
			return res, err
		}
		in.log().Info("transparent proxy: rules installed", "family", f.Name, "chains", strings.Join(r.Chains(), ","))
		res = append(res, FamilyResult{Family: f, Applied: tx})
	}
	if !r.DryRun && r.IPFamilyMode == IPFamilyIPv4 {
		in.removeIPv6(ctx)
	}
	return res, nil
}

// removeIPv6 removes the IPv6 rules of an earlier dual-stack install when
// an IPv4-only install replaces it; best effort, since IPv6 may be absent.
func (in Installer) removeIPv6(ctx context.Context) {
	if checkCanApply(IPv6) != nil || ipv6Unavailable(ctx) != "" {
		return
	}
	if _, err := in.uninstallFamily(ctx, IPv6, false); err != nil {
		in.log().Warn("transparent proxy: removing the IPv6 rules of an earlier install", "error", err)
	}
}

// installTx returns the transaction that turns the nat table st into one
// holding exactly r's rules: our chains declared (created, or flushed if
// they exist), old hooks deleted, chains of an earlier install that r does
// not use removed, then r's rules and hooks appended.
func (r Resolved) installTx(f Family, st natState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Trellis transparent proxy, %s: install\n*nat\n", f.Name)
	chains := r.Chains()
	if !st.exists || st.chains[ChainCreatedNAT] != "" {
		chains = append(chains, ChainCreatedNAT)
	}
	for _, c := range chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	writeLines(&b, st.foreignJumps())
	var stale []string
	for _, c := range st.ownChains() {
		if !slices.Contains(chains, c) {
			stale = append(stale, c)
		}
	}
	// Flush every stale chain before deleting any: they may jump to
	// each other.
	for _, c := range stale {
		b.WriteString("-F " + c + "\n")
	}
	for _, c := range stale {
		b.WriteString("-X " + c + "\n")
	}
	writeLines(&b, r.ChainRules(f))
	writeLines(&b, r.Jumps())
	b.WriteString("COMMIT\n")
	return b.String()
}

// Uninstall removes every chain named with ChainPrefix from the nat table
// of both families, with the rules jumping to them, in one transaction per
// family; if Install created the nat table, the table goes too, so
// iptables-save prints what it printed before Install. Removing nothing is
// not an error. Only c.DryRun and c.IPFamilyMode are used.
func (in Installer) Uninstall(ctx context.Context, c Config) (Result, error) {
	fams := []Family{IPv4, IPv6}
	if strings.EqualFold(c.IPFamilyMode, IPFamilyIPv4) {
		fams = fams[:1]
	}
	var res Result
	for _, f := range fams {
		if err := checkCanApply(f); err != nil {
			if f.is6() && errors.Is(err, ErrMissingBinary) {
				res = append(res, FamilyResult{Family: f, Skipped: err.Error()})
				continue
			}
			return res, err
		}
		if f.is6() {
			if why := ipv6Unavailable(ctx); why != "" {
				res = append(res, FamilyResult{Family: f, Skipped: why})
				continue
			}
		}
		fr, err := in.uninstallFamily(ctx, f, c.DryRun)
		if err != nil {
			return res, err
		}
		res = append(res, fr)
	}
	return res, nil
}

func (in Installer) uninstallFamily(ctx context.Context, f Family, dryRun bool) (FamilyResult, error) {
	st, err := readState(ctx, f)
	if err != nil {
		return FamilyResult{}, err
	}
	own, jumps := st.ownChains(), st.foreignJumps()
	if len(own) == 0 && len(jumps) == 0 {
		return FamilyResult{Family: f, Skipped: "no transparent-proxy rules installed"}, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Trellis transparent proxy, %s: uninstall\n*nat\n", f.Name)
	writeLines(&b, jumps)
	for _, c := range own {
		b.WriteString("-F " + c + "\n")
	}
	for _, c := range own {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	tx := b.String()
	shown := tx
	dropTable := st.chains[ChainCreatedNAT] != ""
	if dropTable {
		shown += "# then, if the nat table is left bare, remove it (install created it), without --noflush:\n*nat\nCOMMIT\n"
	}
	if dryRun {
		return FamilyResult{Family: f, Applied: shown}, nil
	}
	if err := restore(ctx, f, tx, true); err != nil {
		return FamilyResult{}, err
	}
	if dropTable {
		if err := in.dropBareTable(ctx, f); err != nil {
			return FamilyResult{}, err
		}
	}
	in.removePassthroughSource(ctx, f)
	in.log().Info("transparent proxy: rules removed", "family", f.Name, "chains", strings.Join(own, ","))
	return FamilyResult{Family: f, Applied: shown}, nil
}

// dropBareTable removes the nat table if it holds nothing but empty
// built-in chains: restoring an empty nat section without --noflush
// deletes the table on the nf_tables backend.
func (in Installer) dropBareTable(ctx context.Context, f Family) error {
	st, err := readState(ctx, f)
	if err != nil {
		return err
	}
	if !st.exists || !st.bare() {
		return nil
	}
	return restore(ctx, f, "*nat\nCOMMIT\n", false)
}

// checkCanApply reports a missing binary or a non-root user.
func checkCanApply(f Family) error {
	for _, bin := range []string{f.Restore, f.Save} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %s (%s; Debian: apt-get install iptables): %w", ErrMissingBinary, bin, f.Name, err)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w (running as uid %d); run as root, or use --dry-run to print the rules", ErrNotRoot, os.Geteuid())
	}
	return nil
}

// ipv6Unavailable says why IPv6 rules cannot be installed here, or "".
func ipv6Unavailable(ctx context.Context) string {
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		return "the kernel has no IPv6"
	}
	if _, err := run(ctx, "", IPv6.Save, "-t", "nat"); err != nil {
		return "ip6tables cannot use the nat table: " + err.Error()
	}
	return ""
}

// readState returns the nat table as iptables-save prints it. The whole
// save is read: `-t nat` would print built-in chains of an absent table.
func readState(ctx context.Context, f Family) (natState, error) {
	out, err := run(ctx, "", f.Save)
	if err != nil {
		return natState{}, err
	}
	return parseNAT(out), nil
}

// restore feeds input to the family's iptables-restore.
func restore(ctx context.Context, f Family, input string, noflush bool) error {
	// --wait: the legacy backend takes the xtables lock; wait for it
	// rather than fail when another iptables command holds it.
	args := []string{"--wait"}
	if noflush {
		args = append(args, "--noflush")
	}
	if _, err := run(ctx, input, f.Restore, args...); err != nil {
		return fmt.Errorf("%w\ninput was:\n%s", err, input)
	}
	return nil
}

// run executes name with args (no shell), input on stdin, and returns its
// standard output; a failure wraps ErrIPTables with standard error.
func run(ctx context.Context, input, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s %s: %w: %s", ErrIPTables, name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
