package dns

import (
	"context"

	"github.com/miekg/dns"
)

// Sizes of DNS messages.
const (
	// minUDPSize is what a UDP client without EDNS takes (RFC 1035).
	minUDPSize = 512
	// ednsUDPSize is the UDP payload size this server advertises (the DNS
	// flag day 2020 value).
	ednsUDPSize = 1232
	// headerLen is the length of a DNS header.
	headerLen = 12
)

// exchanger sends a query to the upstream resolvers and returns their
// answer (over TCP when tcp is set, else UDP).
type exchanger func(ctx context.Context, query []byte, tcp bool) ([]byte, error)

// decision is what decide makes of a message: a reply, nothing (drop), or
// a query to forward.
type decision struct {
	resp    []byte
	forward bool
	req     *dns.Msg
	// maxSize is the largest reply the client takes.
	maxSize int
}

// handleMessage answers one DNS message received over UDP or TCP: from
// the table, or by forwarding it with fwd. It returns nil when the
// message gets no reply (a response, or too short to answer). It never
// panics on malformed input (FuzzHandleMessage).
func handleMessage(ctx context.Context, cfg *Config, fwd exchanger, msg []byte, tcp bool) []byte {
	d := decide(cfg, msg, tcp)
	if !d.forward {
		return d.resp
	}
	resp, err := fwd(ctx, msg, tcp)
	return finishForward(cfg, d, resp, err)
}

// decide parses a message and answers what the table can answer.
func decide(cfg *Config, msg []byte, tcp bool) decision {
	st := cfg.stats
	st.rxQueries.Inc()
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil {
		st.rxInvalid.Inc()
		return decision{resp: formErr(msg)}
	}
	if req.Response {
		st.rxInvalid.Inc()
		return decision{}
	}
	maxSize := dns.MaxMsgSize
	if !tcp {
		maxSize = minUDPSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > minUDPSize {
			maxSize = int(min(opt.UDPSize(), dns.MaxMsgSize))
		}
	}
	d := decision{req: req, maxSize: maxSize}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		d.resp = reply(cfg, req, dns.RcodeNotImplemented, maxSize)
		return d
	case len(req.Question) != 1:
		st.rxInvalid.Inc()
		d.resp = reply(cfg, req, dns.RcodeFormatError, maxSize)
		return d
	}
	q := req.Question[0]
	rec, known := cfg.Table.lookup(q.Name)
	switch {
	case known:
		st.knownDomain.Inc()
		d.resp = answer(cfg, req, rec, maxSize)
	case !cfg.Forward:
		d.resp = reply(cfg, req, dns.RcodeRefused, maxSize)
	default:
		d.forward = true
	}
	return d
}

// answer replies from the table: the record's addresses of the asked
// type (none for other types: NOERROR without answers), NXDOMAIN when the
// name is known not to exist (rec nil).
func answer(cfg *Config, req *dns.Msg, rec *record, maxSize int) []byte {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = cfg.Forward
	q := req.Question[0]
	switch {
	case rec == nil:
		resp.Rcode = dns.RcodeNameError
		cfg.stats.nxdomain.Inc()
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
	case q.Qtype == dns.TypeA:
		for _, ip := range rec.a {
			resp.Answer = append(resp.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA, rec.ttl), A: ip.AsSlice()})
		}
		cfg.stats.localA.Inc()
	case q.Qtype == dns.TypeAAAA:
		for _, ip := range rec.aaaa {
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA, rec.ttl), AAAA: ip.AsSlice()})
		}
		cfg.stats.localAAAA.Inc()
	}
	return pack(cfg, req, resp, maxSize)
}

func header(name string, typ uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: ttl}
}

// reply is an answerless reply with rcode.
func reply(cfg *Config, req *dns.Msg, rcode, maxSize int) []byte {
	resp := new(dns.Msg)
	resp.SetRcode(req, rcode)
	resp.RecursionAvailable = cfg.Forward
	return pack(cfg, req, resp, maxSize)
}

// pack adds EDNS when the query had it, truncates to what the client
// takes and packs.
func pack(cfg *Config, req, resp *dns.Msg, maxSize int) []byte {
	if req.IsEdns0() != nil {
		resp.SetEdns0(ednsUDPSize, false)
	}
	resp.Truncate(maxSize)
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	cfg.stats.txResponses.Inc()
	return out
}

// formErr replies FORMERR to a message that does not parse, when its
// header can be read and it is a query.
func formErr(msg []byte) []byte {
	if len(msg) < headerLen || msg[2]&0x80 != 0 {
		return nil
	}
	out := make([]byte, headerLen) // no question, no records
	copy(out, msg[:2])             // the ID
	out[2] = 0x80 | msg[2]&0x78    // QR, the query's opcode
	out[3] = dns.RcodeFormatError
	return out
}

// finishForward relays an upstream answer, truncated to what the client
// takes, or SERVFAIL when there is none.
func finishForward(cfg *Config, d decision, resp []byte, err error) []byte {
	cfg.stats.externalQueries.Inc()
	if err != nil {
		cfg.stats.externalFailed.Inc()
		return reply(cfg, d.req, dns.RcodeServerFailure, d.maxSize)
	}
	if len(resp) <= d.maxSize {
		cfg.stats.txResponses.Inc()
		return resp
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil || m.Id != d.req.Id {
		cfg.stats.externalFailed.Inc()
		return reply(cfg, d.req, dns.RcodeServerFailure, d.maxSize)
	}
	m.Truncate(d.maxSize)
	out, err := m.Pack()
	if err != nil {
		return reply(cfg, d.req, dns.RcodeServerFailure, d.maxSize)
	}
	cfg.stats.txResponses.Inc()
	return out
}
