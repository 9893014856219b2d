// Package tracing implements the tracing of trellis-dp's HTTP connection
// managers (HttpConnectionManager.tracing): a span per request, context
// propagation with W3C Trace Context (traceparent) and B3 (multi-header
// x-b3-* and single "b3"), sampling (random, client and overall
// percentages), custom tags, and exporters that send finished spans in
// batches to a Zipkin collector (v2 JSON) or an OpenTelemetry collector
// (OTLP/HTTP JSON) without ever blocking a request.
package tracing

import (
	"encoding/hex"
	"strings"
)

// TraceID and SpanID are W3C/B3 identifiers; the zero value is invalid.
type (
	TraceID [16]byte
	SpanID  [8]byte
)

// IsZero reports whether the id is unset.
func (t TraceID) IsZero() bool { return t == TraceID{} }

// IsZero reports whether the id is unset.
func (s SpanID) IsZero() bool { return s == SpanID{} }

// String is the id in lowercase hex (32 digits; 16 for a 64-bit id
// when short).
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// Short reports whether the id is a 64-bit one (its high half is zero).
func (t TraceID) Short() bool { return [8]byte(t[:8]) == [8]byte{} }

// String is the id in lowercase hex (16 digits).
func (s SpanID) String() string { return hex.EncodeToString(s[:]) }

// Sampling is a propagated sampling decision.
type Sampling uint8

// Sampling decisions.
const (
	SamplingUnset Sampling = iota
	SamplingYes
	SamplingNo
)

// SpanContext is the trace context a request carries.
type SpanContext struct {
	TraceID  TraceID
	SpanID   SpanID
	ParentID SpanID // B3's x-b3-parentspanid; zero when absent
	Sampled  Sampling
	// B3Single: the context came in a single "b3" header (it is
	// propagated in that form too).
	B3Single bool
}

// Valid reports whether the context has a trace and a span id.
func (c SpanContext) Valid() bool { return !c.TraceID.IsZero() && !c.SpanID.IsZero() }

// Getter reads a request header (name in lowercase).
type Getter func(name string) (string, bool)

// Header names of the propagation formats.
const (
	HeaderTraceparent = "traceparent"
	HeaderB3          = "b3"
	HeaderB3TraceID   = "x-b3-traceid"
	HeaderB3SpanID    = "x-b3-spanid"
	HeaderB3ParentID  = "x-b3-parentspanid"
	HeaderB3Sampled   = "x-b3-sampled"
	HeaderB3Flags     = "x-b3-flags"
	HeaderClientTrace = "x-client-trace-id"
)

// PropagationHeaders are the headers a proxy replaces with its own span's
// context (tracestate passes through).
var PropagationHeaders = []string{HeaderTraceparent, HeaderB3, HeaderB3TraceID, HeaderB3SpanID, HeaderB3ParentID, HeaderB3Sampled, HeaderB3Flags}

// IsPropagationHeader reports whether name (any case) is one of
// PropagationHeaders.
func IsPropagationHeader(name string) bool {
	if len(name) != 2 && (len(name) < 10 || len(name) > 17) {
		return false
	}
	for _, h := range PropagationHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// Extract reads the trace context of a request: traceparent first, then
// a single b3 header, then the x-b3-* headers. Malformed headers are
// ignored (ok is false when no valid context was found; a sampling
// decision alone, such as "b3: 0" or "x-b3-sampled: 0", is returned with
// ok false).
func Extract(get Getter) (sc SpanContext, ok bool) {
	if v, found := get(HeaderTraceparent); found {
		if sc, ok = parseTraceparent(v); ok {
			return sc, true
		}
	}
	if v, found := get(HeaderB3); found {
		if sc, ok = parseB3Single(v); ok || sc.Sampled != SamplingUnset {
			return sc, ok
		}
	}
	return extractB3Multi(get)
}

// parseTraceparent parses "00-<32 hex>-<16 hex>-<2 hex>".
func parseTraceparent(v string) (SpanContext, bool) {
	var sc SpanContext
	v = strings.TrimSpace(v)
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return sc, false
	}
	if len(v) > 55 && (v[0:2] == "00" || v[55] != '-') {
		return sc, false
	}
	ver, ok := hexByte(v[0:2])
	if !ok || ver == 0xff {
		return sc, false
	}
	if !decodeHex(sc.TraceID[:], v[3:35]) || !decodeHex(sc.SpanID[:], v[36:52]) {
		return sc, false
	}
	flags, ok := hexByte(v[53:55])
	if !ok || !sc.Valid() {
		return SpanContext{}, false
	}
	sc.Sampled = SamplingNo
	if flags&1 == 1 {
		sc.Sampled = SamplingYes
	}
	return sc, true
}

// parseB3Single parses "traceid-spanid[-sampled[-parentspanid]]" or a
// lone sampling decision ("0", "1", "d").
func parseB3Single(v string) (SpanContext, bool) {
	var sc SpanContext
	sc.B3Single = true
	parts := strings.Split(strings.TrimSpace(v), "-")
	if len(parts) == 1 {
		sc.Sampled = parseSampled(parts[0])
		return sc, false
	}
	if len(parts) > 4 || !parseTraceID(&sc.TraceID, parts[0]) || len(parts[1]) != 16 || !decodeHex(sc.SpanID[:], parts[1]) {
		return SpanContext{}, false
	}
	if len(parts) >= 3 {
		if sc.Sampled = parseSampled(parts[2]); sc.Sampled == SamplingUnset {
			return SpanContext{}, false
		}
	}
	if len(parts) == 4 && (len(parts[3]) != 16 || !decodeHex(sc.ParentID[:], parts[3])) {
		return SpanContext{}, false
	}
	return sc, sc.Valid()
}

func extractB3Multi(get Getter) (SpanContext, bool) {
	var sc SpanContext
	if v, ok := get(HeaderB3Sampled); ok {
		sc.Sampled = parseSampled(v)
	}
	if v, ok := get(HeaderB3Flags); ok && strings.TrimSpace(v) == "1" {
		sc.Sampled = SamplingYes // debug
	}
	tid, ok1 := get(HeaderB3TraceID)
	sid, ok2 := get(HeaderB3SpanID)
	if !ok1 || !ok2 {
		return sc, false
	}
	sid = strings.TrimSpace(sid)
	if !parseTraceID(&sc.TraceID, strings.TrimSpace(tid)) || len(sid) != 16 || !decodeHex(sc.SpanID[:], sid) {
		return SpanContext{Sampled: sc.Sampled}, false
	}
	if v, ok := get(HeaderB3ParentID); ok {
		v = strings.TrimSpace(v)
		if len(v) != 16 || !decodeHex(sc.ParentID[:], v) {
			sc.ParentID = SpanID{}
		}
	}
	return sc, sc.Valid()
}

func parseSampled(v string) Sampling {
	switch strings.TrimSpace(v) {
	case "1", "d", "true":
		return SamplingYes
	case "0", "false":
		return SamplingNo
	}
	return SamplingUnset
}

// parseTraceID reads a 16- or 32-digit hex trace id.
func parseTraceID(t *TraceID, v string) bool {
	switch len(v) {
	case 32:
		return decodeHex(t[:], v)
	case 16:
		*t = TraceID{}
		return decodeHex(t[8:], v)
	}
	return false
}

// decodeHex decodes lowercase or uppercase hex of exactly 2*len(dst)
// digits.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		b, ok := hexByte(s[2*i : 2*i+2])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func hexByte(s string) (byte, bool) {
	hi, ok1 := unhex(s[0])
	lo, ok2 := unhex(s[1])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Inject returns the headers that carry sc to the next hop: traceparent
// and the B3 multi headers, plus the single b3 header when the context
// came in one.
func Inject(sc SpanContext, set func(name, value string)) {
	flags, sampled := "00", "0"
	if sc.Sampled == SamplingYes {
		flags, sampled = "01", "1"
	}
	tid, sid := sc.TraceID.String(), sc.SpanID.String()
	set(HeaderTraceparent, "00-"+tid+"-"+sid+"-"+flags)
	set(HeaderB3TraceID, b3TraceID(sc.TraceID))
	set(HeaderB3SpanID, sid)
	if !sc.ParentID.IsZero() {
		set(HeaderB3ParentID, sc.ParentID.String())
	}
	set(HeaderB3Sampled, sampled)
	if sc.B3Single {
		v := b3TraceID(sc.TraceID) + "-" + sid + "-" + sampled
		if !sc.ParentID.IsZero() {
			v += "-" + sc.ParentID.String()
		}
		set(HeaderB3, v)
	}
}

// b3TraceID is the B3 form of a trace id: 16 digits for a 64-bit id.
func b3TraceID(t TraceID) string {
	if t.Short() {
		return hex.EncodeToString(t[8:])
	}
	return t.String()
}
