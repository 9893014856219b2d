package transparentproxy

import (
	"bufio"
	"strings"
)

// natState is what iptables-save says about the nat table.
type natState struct {
	// exists is false when the nat table is absent (nf_tables creates it
	// only on first use), so iptables-save prints no "*nat" section.
	exists bool
	// chains are the declared chains: name → policy ("-" for user chains).
	chains map[string]string
	// order lists the chains in iptables-save order.
	order []string
	// rules are the "-A CHAIN ..." lines, in order.
	rules []string
}

// parseNAT reads the *nat section of iptables-save output.
func parseNAT(save string) natState {
	st := natState{chains: map[string]string{}}
	in := false
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			in = line == "*nat"
			st.exists = st.exists || in
		case !in:
		case line == "COMMIT":
			in = false
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				st.chains[f[0]] = f[1]
				st.order = append(st.order, f[0])
			}
		case strings.HasPrefix(line, "-A "):
			st.rules = append(st.rules, line)
		}
	}
	return st
}

// ownChains returns the chains named with ChainPrefix, in save order.
func (st natState) ownChains() []string {
	var out []string
	for _, c := range st.order {
		if strings.HasPrefix(c, ChainPrefix) {
			out = append(out, c)
		}
	}
	return out
}

// foreignJumps returns, as "-D ..." lines, the rules of chains not named
// with ChainPrefix that jump to (or go to) a chain that is: the hooks an
// install added to PREROUTING and OUTPUT.
func (st natState) foreignJumps() []string {
	var out []string
	for _, r := range st.rules {
		f := strings.Fields(r)
		if len(f) < 2 || strings.HasPrefix(f[1], ChainPrefix) {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto") && strings.HasPrefix(f[i+1], ChainPrefix) {
				out = append(out, "-D"+strings.TrimPrefix(r, "-A"))
				break
			}
		}
	}
	return out
}

// bare reports whether the nat table holds nothing but its built-in
// chains, empty, with ACCEPT policies: what an absent table looks like
// once something has created it.
func (st natState) bare() bool {
	if len(st.rules) > 0 {
		return false
	}
	for c, policy := range st.chains {
		if policy != "ACCEPT" || !builtin[c] {
			return false
		}
	}
	return true
}

// builtin lists the nat table's built-in chains.
var builtin = map[string]bool{"PREROUTING": true, "INPUT": true, "OUTPUT": true, "POSTROUTING": true}
