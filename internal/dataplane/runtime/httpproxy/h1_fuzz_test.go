package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// FuzzH1Request feeds arbitrary bytes to the fast path's request parser.
// Whatever it accepts must be forwarded as a request that net/http parses
// back to the same method, target, host and framing, with no hop-by-hop
// header left: the fast path must never forward something the peer
// behind it could read differently (request smuggling).
func FuzzH1Request(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close, x-a\r\nX-A: 1\r\nTE: trailers\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX:  v \t\r\nUpgrade: h2c\r\nKeep-Alive: 1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req h1Request
		var err error
		req.head, err = readHead(bufio.NewReader(bytes.NewReader(in)), nil, maxRequestHead)
		if err != nil {
			return
		}
		if req.parse() != nil {
			return
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		writeRequestHead(w, &req)
		_ = w.Flush()
		got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out.Bytes())))
		if err != nil {
			t.Fatalf("accepted %q but forwarded %q, which net/http refuses: %v", in, out.Bytes(), err)
		}
		if got.Method != req.meth || got.RequestURI != req.target || got.Host != req.host {
			t.Fatalf("forwarded %q as %s %s host %q", in, got.Method, got.RequestURI, got.Host)
		}
		wantLength := req.contentLength
		if req.chunked {
			wantLength = -1
		} else if wantLength < 0 {
			wantLength = 0
		}
		if got.ContentLength != wantLength || (len(got.TransferEncoding) > 0) != req.chunked {
			t.Fatalf("forwarded %q with length %d %v, want %d chunked %v", in, got.ContentLength, got.TransferEncoding, wantLength, req.chunked)
		}
		for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
			if _, ok := got.Header[h]; ok {
				t.Fatalf("forwarded %q with hop-by-hop %s", in, h)
			}
		}
		if te := got.Header.Values("Te"); len(te) > 1 || len(te) == 1 && te[0] != "trailers" {
			t.Fatalf("forwarded TE %q", te)
		}
	})
}

// FuzzChunked feeds arbitrary chunked bodies to the fast path's chunk
// copier: what it accepts, net/http's chunked reader must accept too, with
// the same payload, and what it writes must decode to that payload.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"3\r\nabc\r\n0\r\n\r\n",
		"3;ext=1\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
		"A \r\n0123456789\r\n0\r\n\r\n",
		"0\r\n\r\n",
		"fffffffffffffffff\r\n",
		"3\r\nabcd\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		w := bufio.NewWriterSize(&out, 64)
		if ce := copyChunked(w, &out, bufio.NewReaderSize(bytes.NewReader(in), 64)); ce.failed() {
			return
		}
		want, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if err != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", in, err)
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(out.Bytes())))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q copied as %q: decodes to %q (%v), want %q", in, out.Bytes(), got, err, want)
		}
		if !strings.HasSuffix(out.String(), "\r\n\r\n") {
			t.Fatalf("%q copied as %q: no end of the trailer section", in, out.Bytes())
		}
	})
}
