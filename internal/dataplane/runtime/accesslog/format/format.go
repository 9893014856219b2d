// Package format implements Envoy's access log format strings: text with
// %OPERATOR% command operators (the subset trellis-dp implements, listed
// in operators), and JSON formats whose string values are format strings.
// It is pure (no I/O, no Envoy types), so the control plane uses it to
// refuse a format trellis-dp cannot render and the data plane to render
// log lines.
package format

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownOperator is wrapped by the error of a format string with an
// operator trellis-dp does not implement.
var ErrUnknownOperator = errors.New("unknown command operator")

// ErrSyntax is wrapped by the error of a malformed format string.
var ErrSyntax = errors.New("malformed format string")

// Headers reads the header values of a request or response; name is
// case-insensitive, values of repeated fields are joined by commas.
type Headers interface {
	Get(name string) (string, bool)
}

// Entry is what is known about one request (HTTP) or connection (TCP)
// when it ends; operators read it.
type Entry struct {
	Start    time.Time
	Duration time.Duration
	// Method, Path, Authority and Scheme answer the pseudo-headers
	// :METHOD, :PATH, :AUTHORITY and :SCHEME of REQ().
	Method, Path, Authority, Scheme string
	// Protocol is HTTP/1.1, HTTP/2, ...; empty for TCP ("-").
	Protocol string
	Request  Headers // nil: none
	Response Headers // nil: none
	// ResponseCode is 0 when no response was sent.
	ResponseCode int
	// Flags are Envoy's response flags (UH, UF, NR, ...), comma separated.
	Flags            string
	UpstreamHost     string
	UpstreamCluster  string
	UpstreamLocal    string
	DownstreamRemote string
	DownstreamLocal  string
	BytesReceived    int64
	BytesSent        int64
	// RequestedServerName is the SNI of the downstream TLS connection.
	RequestedServerName string
}

// opKind is an operator's kind.
type opKind uint8

const (
	opLiteral opKind = iota
	opStartTime
	opReq
	opResp
	opResponseCode
	opResponseFlags
	opDuration
	opUpstreamHost
	opUpstreamCluster
	opUpstreamLocal
	opBytesReceived
	opBytesSent
	opProtocol
	opDownstreamRemote
	opDownstreamRemoteNoPort
	opDownstreamLocal
	opDownstreamLocalNoPort
	opDownstreamDirectRemote
	opDownstreamDirectRemoteNoPort
	opRequestedServerName
	opHostname
	opUpstreamHostNoPort
)

// simpleOps are the operators without an argument.
var simpleOps = map[string]opKind{
	"RESPONSE_CODE":                                 opResponseCode,
	"RESPONSE_FLAGS":                                opResponseFlags,
	"DURATION":                                      opDuration,
	"UPSTREAM_HOST":                                 opUpstreamHost,
	"UPSTREAM_HOST_NAME_WITHOUT_PORT":               opUpstreamHostNoPort,
	"UPSTREAM_CLUSTER":                              opUpstreamCluster,
	"UPSTREAM_LOCAL_ADDRESS":                        opUpstreamLocal,
	"BYTES_RECEIVED":                                opBytesReceived,
	"BYTES_SENT":                                    opBytesSent,
	"PROTOCOL":                                      opProtocol,
	"DOWNSTREAM_REMOTE_ADDRESS":                     opDownstreamRemote,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":        opDownstreamRemoteNoPort,
	"DOWNSTREAM_LOCAL_ADDRESS":                      opDownstreamLocal,
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":         opDownstreamLocalNoPort,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS":              opDownstreamDirectRemote,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": opDownstreamDirectRemoteNoPort,
	"REQUESTED_SERVER_NAME":                         opRequestedServerName,
	"HOSTNAME":                                      opHostname,
}

// Operators returns the names of the command operators trellis-dp
// implements (START_TIME, REQ and RESP take arguments), sorted.
func Operators() []string {
	out := []string{"REQ", "RESP", "START_TIME"}
	for k := range simpleOps {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

// segment is a literal or an operator of a format string.
type segment struct {
	kind    opKind
	literal string
	// REQ/RESP: the header and its alternative (after '?').
	header, alt string
	// maxLen truncates the value (":N"); 0: none.
	maxLen int
	// timeFmt is START_TIME's format; empty: Envoy's default.
	timeFmt *strftime
}

// Format is a compiled text format string.
type Format struct {
	segs []segment
	// single: the format is exactly one operator (JSON renders it typed).
	single bool
}

// Parse compiles a text format string. Operators that are not
// implemented are an error wrapping ErrUnknownOperator that names them.
func Parse(s string) (*Format, error) {
	f := &Format{}
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		seg, n, err := parseOperator(s[i:])
		if err != nil {
			return nil, fmt.Errorf("at position %d: %w", i, err)
		}
		if lit.Len() > 0 {
			f.segs = append(f.segs, segment{kind: opLiteral, literal: lit.String()})
			lit.Reset()
		}
		f.segs = append(f.segs, seg)
		i += n
	}
	if lit.Len() > 0 {
		f.segs = append(f.segs, segment{kind: opLiteral, literal: lit.String()})
	}
	f.single = len(f.segs) == 1 && f.segs[0].kind != opLiteral
	return f, nil
}

// parseOperator parses the operator at the start of s ("%NAME...%") and
// returns it and its length.
func parseOperator(s string) (segment, int, error) {
	i := 1
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] == '_' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	name := s[1:i]
	if name == "" {
		return segment{}, 0, fmt.Errorf("%w: '%%' must start a command operator such as %%START_TIME%%", ErrSyntax)
	}
	var arg string
	hasArg := false
	if i < len(s) && s[i] == '(' {
		end := strings.IndexByte(s[i:], ')')
		if end < 0 {
			return segment{}, 0, fmt.Errorf("%w: %%%s( has no closing parenthesis", ErrSyntax, name)
		}
		arg, hasArg = s[i+1:i+end], true
		i += end + 1
	}
	maxLen := 0
	if i < len(s) && s[i] == ':' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(s[i+1 : j])
		if err != nil || n <= 0 {
			return segment{}, 0, fmt.Errorf("%w: %%%s: needs a positive length after ':'", ErrSyntax, name)
		}
		maxLen, i = n, j
	}
	if i >= len(s) || s[i] != '%' {
		return segment{}, 0, fmt.Errorf("%w: %%%s is not closed by '%%'", ErrSyntax, name)
	}
	seg, err := operator(name, arg, hasArg)
	if err != nil {
		return segment{}, 0, err
	}
	seg.maxLen = maxLen
	return seg, i + 1, nil
}

func operator(name, arg string, hasArg bool) (segment, error) {
	switch name {
	case "START_TIME":
		seg := segment{kind: opStartTime}
		if hasArg && arg != "" {
			tf, err := compileStrftime(arg)
			if err != nil {
				return segment{}, fmt.Errorf("%%START_TIME(%s)%%: %w", arg, err)
			}
			seg.timeFmt = tf
		}
		return seg, nil
	case "REQ", "RESP":
		if !hasArg || arg == "" {
			return segment{}, fmt.Errorf("%w: %%%s%% needs a header name: %%%s(NAME)%%", ErrSyntax, name, name)
		}
		seg := segment{kind: opReq}
		if name == "RESP" {
			seg.kind = opResp
		}
		h, alt, _ := strings.Cut(arg, "?")
		if h == "" || strings.Contains(alt, "?") {
			return segment{}, fmt.Errorf("%w: %%%s(%s)%%: want NAME or NAME?ALTERNATIVE", ErrSyntax, name, arg)
		}
		seg.header, seg.alt = strings.ToLower(h), strings.ToLower(alt)
		return seg, nil
	}
	k, ok := simpleOps[name]
	if !ok {
		return segment{}, fmt.Errorf("%w %%%s%% (trellis-dp implements %s)", ErrUnknownOperator, name, strings.Join(Operators(), ", "))
	}
	if hasArg {
		return segment{}, fmt.Errorf("%w: %%%s%% takes no argument", ErrSyntax, name)
	}
	return segment{kind: k}, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
