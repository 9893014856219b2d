package httpproxy

import (
	"bufio"
	"errors"
	"strings"
	"unsafe"
)

// Limits of the fast path. A request head beyond maxRequestHead goes to
// net/http (which allows 1 MiB and answers 431 beyond); a response head
// beyond maxResponseHead, or a chunk line or trailer section beyond its
// limit, is a malformed message.
const (
	maxRequestHead  = 64 << 10
	maxResponseHead = 1 << 20
	maxChunkLine    = 4 << 10
	maxTrailers     = 64 << 10
)

// errMalformed reports an upstream response or a chunked body that does
// not parse.
var errMalformed = errors.New("malformed HTTP/1.1 message")

// errNotFast reports a request the fast path leaves to net/http: valid
// HTTP it does not handle itself (HTTP/1.0, HTTP/2's preface, absolute
// targets, Expect, several Host headers, a Transfer-Encoding other than
// chunked, ...) or something invalid, which net/http answers with the
// right 4xx.
var errNotFast = errors.New("request needs net/http")

// field is a header field; name and value point into the head buffer.
type field struct {
	name, value string
	hop         bool // not forwarded: hop-by-hop, or handled apart
}

// h1Request is a request head read by the fast path. Its strings point
// into the connection's head buffer: they are valid until the next
// request is read, and nothing keeps them longer.
type h1Request struct {
	head   []byte
	meth   string
	target string
	host   string
	fields []field

	contentLength int64 // -1 when absent
	chunked       bool
	closeConn     bool // Connection: close
	hasXFP        bool // X-Forwarded-Proto
	hasXRID       bool // X-Request-Id
	teTrailers    bool // TE names trailers
}

var _ request = (*h1Request)(nil)

func (r *h1Request) authority() string { return r.host }
func (r *h1Request) method() string    { return r.meth }

// header returns the values of the header named name (any case), joined
// by commas.
func (r *h1Request) header(name string) (string, bool) {
	return joinFields(r.fields, name)
}

// joinFields returns the values of the fields named name (any case),
// joined by commas.
func joinFields(fields []field, name string) (string, bool) {
	var out string
	found := false
	for i := range fields {
		f := &fields[i]
		if !strings.EqualFold(f.name, name) {
			continue
		}
		if found {
			out += "," + f.value
		} else {
			out, found = f.value, true
		}
	}
	return out, found
}

// hasBody reports whether a body follows the head.
func (r *h1Request) hasBody() bool { return r.chunked || r.contentLength > 0 }

// pathOnly is the target without its query (and fragment).
func (r *h1Request) pathOnly() string {
	if i := strings.IndexAny(r.target, "?#"); i >= 0 {
		return r.target[:i]
	}
	return r.target
}

// idempotent reports whether the request may be sent again after a
// reused upstream connection failed before answering, as net/http's
// transport decides.
func (r *h1Request) idempotent() bool {
	switch r.meth {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, ok := r.header("Idempotency-Key")
	if !ok {
		_, ok = r.header("X-Idempotency-Key")
	}
	return ok
}

// readHead appends one message head (start line, fields and the empty
// line) from br to buf. It returns errHeadTooLarge past max bytes.
func readHead(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	lineStart := len(buf)
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > max {
			return buf, errHeadTooLarge
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return buf, err
		}
		line := buf[lineStart:]
		if len(line) == 2 && line[0] == '\r' || len(line) == 1 {
			if lineStart == 0 {
				// An empty line before the start line.
				return buf, errNotFast
			}
			return buf, nil
		}
		lineStart = len(buf)
	}
}

var errHeadTooLarge = errors.New("message head too large")

// str returns b as a string without copying; the caller must not change
// b while the string is in use.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// splitLines calls fn for each line of a head without its line ending,
// the start line included, and reports whether every line ends in CRLF.
func splitLines(head []byte, fn func(line []byte) error) error {
	for len(head) > 0 {
		i := indexByte(head, '\n')
		if i < 1 || head[i-1] != '\r' {
			return errBareLF
		}
		line := head[:i-1]
		head = head[i+1:]
		if len(line) == 0 {
			return nil
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return nil
}

var errBareLF = errors.New("line not ended by CRLF")

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// parse parses r.head. It returns errNotFast for anything the fast path
// leaves to net/http.
func (r *h1Request) parse() error {
	r.fields = r.fields[:0]
	r.host, r.contentLength = "", -1
	r.chunked, r.closeConn, r.hasXFP, r.hasXRID, r.teTrailers = false, false, false, false, false
	first := true
	hostSeen, teSeen := false, false
	var connection []string
	err := splitLines(r.head, func(line []byte) error {
		if first {
			first = false
			return r.parseRequestLine(line)
		}
		name, value, ok := parseField(line)
		if !ok {
			return errNotFast
		}
		f := field{name: name, value: value}
		switch {
		case strings.EqualFold(name, "Host"):
			if hostSeen || !validHost(value) {
				return errNotFast
			}
			hostSeen, r.host, f.hop = true, value, true
		case strings.EqualFold(name, "Content-Length"):
			n, ok := parseContentLength(value)
			if !ok || r.contentLength >= 0 {
				return errNotFast
			}
			r.contentLength = n
		case strings.EqualFold(name, "Transfer-Encoding"):
			if teSeen || !strings.EqualFold(value, "chunked") {
				return errNotFast
			}
			teSeen, r.chunked, f.hop = true, true, true
		case strings.EqualFold(name, "Connection"):
			f.hop = true
			connection = append(connection, value)
		case strings.EqualFold(name, "Expect"):
			return errNotFast
		case strings.EqualFold(name, "TE"):
			f.hop = true
			r.teTrailers = r.teTrailers || hasToken(value, "trailers")
		case strings.EqualFold(name, "Keep-Alive"), strings.EqualFold(name, "Proxy-Connection"), strings.EqualFold(name, "Upgrade"):
			f.hop = true
		case strings.EqualFold(name, "X-Forwarded-Proto"):
			r.hasXFP = true
		case strings.EqualFold(name, "X-Request-Id"):
			r.hasXRID = true
		}
		r.fields = append(r.fields, f)
		return nil
	})
	switch {
	case err != nil:
		return errNotFast
	case !hostSeen, r.chunked && r.contentLength >= 0:
		return errNotFast
	}
	for _, v := range connection {
		if hasToken(v, "close") {
			r.closeConn = true
		}
		markConnectionTokens(r.fields, v)
	}
	return nil
}

// parseRequestLine accepts "METHOD /origin-form HTTP/1.1" only.
func (r *h1Request) parseRequestLine(line []byte) error {
	sp1 := indexByte(line, ' ')
	if sp1 <= 0 {
		return errNotFast
	}
	rest := line[sp1+1:]
	sp2 := indexByte(rest, ' ')
	if sp2 <= 0 || string(rest[sp2+1:]) != "HTTP/1.1" {
		return errNotFast
	}
	method, target := line[:sp1], rest[:sp2]
	if !isToken(method) || target[0] != '/' || string(method) == "CONNECT" {
		return errNotFast
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return errNotFast
		}
	}
	r.meth, r.target = str(method), str(target)
	return nil
}

// parseField splits "Name: value" and trims the value's optional
// whitespace. It refuses obsolete line folding, a name that is not a
// token (or whitespace before the colon) and control characters in the
// value.
func parseField(line []byte) (name, value string, ok bool) {
	colon := indexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return "", "", false
	}
	v := line[colon+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return "", "", false
		}
	}
	return str(line[:colon]), str(v), true
}

// markConnectionTokens marks the fields that a Connection header value
// names as hop-by-hop.
func markConnectionTokens(fields []field, connection string) {
	for token := range strings.SplitSeq(connection, ",") {
		token = strings.TrimSpace(token)
		if token == "" || strings.EqualFold(token, "close") || strings.EqualFold(token, "keep-alive") {
			continue
		}
		for i := range fields {
			if strings.EqualFold(fields[i].name, token) {
				fields[i].hop = true
			}
		}
	}
}

func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// tokenChars are RFC 9110 tchar.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// validHost accepts the characters of a reg-name, an IP literal and a
// port; anything else goes to net/http, which refuses what is invalid.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !tokenChars[c] && !strings.ContainsRune(":[]()!$&',;=", rune(c)) {
			return false
		}
	}
	return true
}

// h1Response is an upstream response head, parsed like h1Request.
type h1Response struct {
	head   []byte
	code   int
	reason string
	fields []field

	contentLength int64 // -1 when absent
	chunked       bool
	closeConn     bool // the upstream closes the connection after it
}

// parse parses r.head; any error is errMalformed.
func (r *h1Response) parse() error {
	r.fields = r.fields[:0]
	r.contentLength, r.chunked, r.closeConn = -1, false, false
	first := true
	http10 := false
	keepAlive := false
	var connection []string
	err := splitLines(r.head, func(line []byte) error {
		if first {
			first = false
			var err error
			http10, err = r.parseStatusLine(line)
			return err
		}
		name, value, ok := parseField(line)
		if !ok {
			return errMalformed
		}
		f := field{name: name, value: value}
		switch {
		case strings.EqualFold(name, "Content-Length"):
			n, ok := parseContentLength(value)
			if !ok || r.contentLength >= 0 && r.contentLength != n {
				return errMalformed
			}
			r.contentLength = n
			f.hop = true // written again according to the body sent down
		case strings.EqualFold(name, "Transfer-Encoding"):
			if !strings.EqualFold(value, "chunked") || r.chunked {
				return errMalformed
			}
			r.chunked, f.hop = true, true
		case strings.EqualFold(name, "Connection"):
			f.hop = true
			connection = append(connection, value)
			keepAlive = keepAlive || hasToken(value, "keep-alive")
		case strings.EqualFold(name, "Keep-Alive"), strings.EqualFold(name, "Proxy-Connection"),
			strings.EqualFold(name, "Upgrade"), strings.EqualFold(name, "TE"), strings.EqualFold(name, "Trailer"):
			f.hop = true
		}
		r.fields = append(r.fields, f)
		return nil
	})
	if err != nil {
		return errMalformed
	}
	for _, v := range connection {
		if hasToken(v, "close") {
			r.closeConn = true
		}
		markConnectionTokens(r.fields, v)
	}
	if http10 && !keepAlive {
		r.closeConn = true
	}
	return nil
}

// parseStatusLine accepts "HTTP/1.x NNN reason" and reports HTTP/1.0.
func (r *h1Response) parseStatusLine(line []byte) (http10 bool, err error) {
	if len(line) < 12 || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return false, errMalformed
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		http10 = true
	default:
		return false, errMalformed
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false, errMalformed
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return false, errMalformed
	}
	r.code, r.reason = code, ""
	if len(line) > 13 {
		r.reason = str(line[13:])
	}
	return http10, nil
}

// bodyMode is how a response body is delimited (RFC 9112 §6.3).
type bodyMode uint8

const (
	bodyNone    bodyMode = iota
	bodyLength           // Content-Length bytes
	bodyChunked          // chunked transfer coding
	bodyToClose          // until the upstream closes the connection
)

// bodyMode returns how the body of the response to a request with the
// given method is delimited.
func (r *h1Response) bodyMode(method string) bodyMode {
	switch {
	case method == "HEAD" || r.code < 200 || r.code == 204 || r.code == 304:
		return bodyNone
	case r.chunked:
		return bodyChunked
	case r.contentLength == 0:
		return bodyNone
	case r.contentLength > 0:
		return bodyLength
	}
	return bodyToClose
}

var _ request = (*h1Response)(nil)

func (r *h1Response) authority() string { return "" }
func (r *h1Response) method() string    { return "" }

// header returns the values of the response header named name (any
// case), joined by commas.
func (r *h1Response) header(name string) (string, bool) {
	return joinFields(r.fields, name)
}
