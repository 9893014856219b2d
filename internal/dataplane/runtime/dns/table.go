package dns

import (
	"net/netip"
	"strings"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Table is a compiled inline DNS table: the addresses of local names and
// the suffixes the server is authoritative for.
type Table struct {
	// records are by fully qualified name (lower case when
	// caseInsensitive).
	records         map[string]*record
	suffixes        []suffixMatcher
	caseInsensitive bool
}

type record struct {
	a, aaaa []netip.Addr
	ttl     uint32
}

// lookup returns the record of a fully qualified name, and whether the
// name is under a known suffix (so a name missing from the table does not
// exist rather than being asked of the upstream resolvers).
func (t *Table) lookup(fqdn string) (*record, bool) {
	key := fqdn
	if t.caseInsensitive {
		key = strings.ToLower(fqdn)
	}
	if rec, ok := t.records[key]; ok {
		return rec, true
	}
	bare := strings.TrimSuffix(fqdn, ".")
	for _, m := range t.suffixes {
		if m(bare) {
			return nil, true
		}
	}
	return nil, false
}

// Len returns the number of names of the table.
func (t *Table) Len() int { return len(t.records) }

// filterStats are the DNS filter's counters, named as Envoy's
// (dns_filter.<stat_prefix>.*).
type filterStats struct {
	rxQueries, rxInvalid, txResponses         *stats.Counter
	knownDomain, localA, localAAAA, nxdomain  *stats.Counter
	externalQueries, externalFailed, overflow *stats.Counter
}

func newFilterStats(reg stats.Registry, prefix string) *filterStats {
	if reg == nil {
		reg = stats.NewStore()
	}
	s := stats.NewScope(reg, "dns_filter."+stats.Sanitize(prefix))
	return &filterStats{
		rxQueries:       s.Counter("downstream_rx_queries"),
		rxInvalid:       s.Counter("downstream_rx_invalid_queries"),
		txResponses:     s.Counter("downstream_tx_responses"),
		knownDomain:     s.Counter("known_domain_queries"),
		localA:          s.Counter("local_a_record_answers"),
		localAAAA:       s.Counter("local_aaaa_record_answers"),
		nxdomain:        s.Counter("downstream_tx_responses_nxdomain"),
		externalQueries: s.Counter("external_queries"),
		externalFailed:  s.Counter("unanswered_queries"),
		overflow:        s.Counter("pending_lookups_overflow"),
	}
}
