package listener

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc}
	for _, tc := range []struct {
		name string
		in   []byte
		want verdict
	}{
		{"empty", nil, needMore},
		{"ClientHello", hello, isTLS},
		{"ClientHello prefix", hello[:5], needMore},
		{"HTTP/1.1", []byte("GET / HTTP/1.1\r\n"), isPlaintext},
		{"h2c preface", []byte("PRI * HTTP/2.0\r\n"), isPlaintext},
		{"one byte", []byte{0x16}, needMore},
		{"SSLv2-style", []byte{0x80, 0x2e, 0x01}, isPlaintext},
		{"not version 3", []byte{0x16, 0x02}, isPlaintext},
		{"minor too high", []byte{0x16, 0x03, 0x05}, isPlaintext},
		{"zero length", []byte{0x16, 0x03, 0x01, 0x00, 0x00}, isPlaintext},
		{"oversized record", []byte{0x16, 0x03, 0x03, 0x40, 0x01}, isPlaintext},
		{"ServerHello", []byte{0x16, 0x03, 0x03, 0x00, 0x40, 0x02}, isPlaintext},
	} {
		if got := classify(tc.in); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A real ClientHello from crypto/tls is classified as TLS.
func TestClassifyGoClientHello(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _ = tls.Client(a, &tls.Config{InsecureSkipVerify: true}).Handshake() }() //nolint:gosec // test
	buf := make([]byte, clientHelloPrefixLen)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	if got := classify(buf); got != isTLS {
		t.Fatalf("classify(% x) = %d", buf, got)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{0x16, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		v := classify(b)
		// A verdict never changes as more bytes come, and never needs more
		// than clientHelloPrefixLen bytes.
		for i := range len(b) {
			if p := classify(b[:i]); p != needMore && p != v {
				t.Fatalf("classify(% x) = %d but its prefix % x gave %d", b, v, b[:i], p)
			}
		}
		if len(b) >= clientHelloPrefixLen && v == needMore {
			t.Fatalf("undecided after %d bytes: % x", len(b), b)
		}
		if v == isTLS && (b[0] != 0x16 || b[1] != 0x03 || b[5] != 0x01) {
			t.Fatalf("% x classified as TLS", b)
		}
	})
}

// The inspector waits for a ClientHello sent in pieces, and leaves every
// byte for the reader after it.
func TestInspectPeeksWithoutConsuming(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks [][]byte
		tls    bool
	}{
		{"tls in pieces", [][]byte{{0x16}, {0x03, 0x01}, {0x00, 0x05, 0x01, 1, 2, 3, 4}}, true},
		{"plaintext", [][]byte{[]byte("GET / HTTP/1.1\r\n")}, false},
		{"plaintext after a tls-like byte", [][]byte{{0x16}, []byte("xyz")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var all []byte
			for _, c := range tc.chunks {
				all = append(all, c...)
			}
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				defer c.Close()
				for _, chunk := range tc.chunks {
					_, _ = c.Write(chunk)
					time.Sleep(20 * time.Millisecond)
				}
			}()
			conn, err := ln.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got, c, err := inspect(conn)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.tls {
				t.Fatalf("tls = %v, want %v", got, tc.tls)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			rest, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rest, all) {
				t.Fatalf("read after inspect: % x, want % x", rest, all)
			}
		})
	}
}

func TestInspectSilentClientIsPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the inspector timeout")
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	got, _, err := inspect(conn)
	if err != nil || got {
		t.Fatalf("inspect = %v, %v; want plaintext", got, err)
	}
	if d := time.Since(start); d < inspectTimeout/2 {
		t.Fatalf("gave up after %v", d)
	}
}
