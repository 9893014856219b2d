package format

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// hostname is the value of %HOSTNAME%.
var hostname = func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "-"
	}
	return h
}()

// Append renders the format for e at the end of buf. A value that is not
// known renders as "-", as in Envoy.
func (f *Format) Append(buf []byte, e *Entry) []byte {
	for i := range f.segs {
		s := &f.segs[i]
		if s.kind == opLiteral {
			buf = append(buf, s.literal...)
			continue
		}
		start := len(buf)
		var ok bool
		buf, ok = s.appendValue(buf, e)
		if !ok {
			buf = append(buf[:start], '-')
			continue
		}
		if s.maxLen > 0 && len(buf)-start > s.maxLen {
			buf = buf[:start+s.maxLen]
		}
	}
	return buf
}

// numeric reports whether the operator renders a number (JSON renders it
// unquoted when it is the whole value).
func (s *segment) numeric() bool {
	switch s.kind {
	case opResponseCode, opDuration, opBytesReceived, opBytesSent:
		return true
	}
	return false
}

// appendValue appends the operator's value; ok is false when there is
// none.
func (s *segment) appendValue(buf []byte, e *Entry) ([]byte, bool) {
	switch s.kind {
	case opStartTime:
		if e.Start.IsZero() {
			return buf, false
		}
		if s.timeFmt == nil {
			return e.Start.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z"), true
		}
		return s.timeFmt.append(buf, e.Start), true
	case opReq:
		return appendHeader(buf, e, e.Request, s.header, s.alt, true)
	case opResp:
		return appendHeader(buf, e, e.Response, s.header, s.alt, false)
	case opResponseCode:
		return strconv.AppendInt(buf, int64(e.ResponseCode), 10), true
	case opResponseFlags:
		if e.Flags == "" {
			return buf, false
		}
		return append(buf, e.Flags...), true
	case opDuration:
		return strconv.AppendInt(buf, e.Duration.Milliseconds(), 10), true
	case opBytesReceived:
		return strconv.AppendInt(buf, e.BytesReceived, 10), true
	case opBytesSent:
		return strconv.AppendInt(buf, e.BytesSent, 10), true
	case opHostname:
		return append(buf, hostname...), true
	}
	v := s.stringValue(e)
	if v == "" {
		return buf, false
	}
	return append(buf, v...), true
}

// stringValue is the value of the string operators.
func (s *segment) stringValue(e *Entry) string {
	switch s.kind {
	case opUpstreamHost:
		return e.UpstreamHost
	case opUpstreamHostNoPort:
		return withoutPort(e.UpstreamHost)
	case opUpstreamCluster:
		return e.UpstreamCluster
	case opUpstreamLocal:
		return e.UpstreamLocal
	case opProtocol:
		return e.Protocol
	case opDownstreamRemote, opDownstreamDirectRemote:
		return e.DownstreamRemote
	case opDownstreamRemoteNoPort, opDownstreamDirectRemoteNoPort:
		return withoutPort(e.DownstreamRemote)
	case opDownstreamLocal:
		return e.DownstreamLocal
	case opDownstreamLocalNoPort:
		return withoutPort(e.DownstreamLocal)
	case opRequestedServerName:
		return e.RequestedServerName
	}
	return ""
}

func withoutPort(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// appendHeader appends a header's value (or its alternative's); the
// request's pseudo-headers come from e.
func appendHeader(buf []byte, e *Entry, h Headers, name, alt string, req bool) ([]byte, bool) {
	for _, n := range [2]string{name, alt} {
		if n == "" {
			continue
		}
		if v, ok := headerValue(e, h, n, req); ok {
			return append(buf, v...), true
		}
	}
	return buf, false
}

func headerValue(e *Entry, h Headers, name string, req bool) (string, bool) {
	if req && strings.HasPrefix(name, ":") {
		var v string
		switch name {
		case ":method":
			v = e.Method
		case ":path":
			v = e.Path
		case ":authority":
			v = e.Authority
		case ":scheme":
			v = e.Scheme
		}
		return v, v != ""
	}
	if h == nil {
		return "", false
	}
	v, ok := h.Get(name)
	return v, ok && v != ""
}

// strftime is a compiled START_TIME format: strftime conversions plus
// Envoy's %f (%3f, %6f, %9f: fractional seconds), %s (Unix seconds) and
// %E3S/%E6S/%E9S (seconds with fractions). Times render in UTC.
type strftime struct {
	parts []tfPart
}

type tfPart struct {
	lit  string
	conv byte // 0: literal
	prec int  // %Nf, %ENS
}

func compileStrftime(s string) (*strftime, error) {
	tf := &strftime{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			tf.parts = append(tf.parts, tfPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			lit.WriteByte(s[i])
			continue
		}
		i++
		prec := 9
		switch {
		case s[i] == 'E' && i+2 < len(s) && s[i+1] >= '1' && s[i+1] <= '9' && s[i+2] == 'S':
			prec = int(s[i+1] - '0')
			i += 2
			flush()
			tf.parts = append(tf.parts, tfPart{conv: 'E', prec: prec})
			continue
		case s[i] >= '1' && s[i] <= '9' && i+1 < len(s) && s[i+1] == 'f':
			prec = int(s[i] - '0')
			i++
		}
		c := s[i]
		if !strings.ContainsRune("YmdHMSyjbBaAZzsfeTFpID%", rune(c)) {
			lit.WriteByte('%')
			lit.WriteByte(c)
			continue
		}
		flush()
		tf.parts = append(tf.parts, tfPart{conv: c, prec: prec})
	}
	flush()
	return tf, nil
}

func (tf *strftime) append(buf []byte, t time.Time) []byte {
	t = t.UTC()
	for _, p := range tf.parts {
		if p.conv == 0 {
			buf = append(buf, p.lit...)
			continue
		}
		buf = appendConv(buf, t, p)
	}
	return buf
}

var goLayouts = map[byte]string{
	'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05", 'y': "06",
	'b': "Jan", 'B': "January", 'a': "Mon", 'A': "Monday", 'Z': "MST", 'z': "-0700",
	'e': "_2", 'T': "15:04:05", 'F': "2006-01-02", 'p': "PM", 'I': "03", 'D': "01/02/06",
}

func appendConv(buf []byte, t time.Time, p tfPart) []byte {
	switch p.conv {
	case '%':
		return append(buf, '%')
	case 's':
		return strconv.AppendInt(buf, t.Unix(), 10)
	case 'j':
		d := t.YearDay()
		return append(buf, byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10))
	case 'f':
		return appendFraction(buf, t, p.prec)
	case 'E':
		buf = t.AppendFormat(buf, "05")
		buf = append(buf, '.')
		return appendFraction(buf, t, p.prec)
	}
	return t.AppendFormat(buf, goLayouts[p.conv])
}

func appendFraction(buf []byte, t time.Time, prec int) []byte {
	ns := strconv.Itoa(t.Nanosecond() + 1e9)[1:] // nine digits
	return append(buf, ns[:prec]...)
}
