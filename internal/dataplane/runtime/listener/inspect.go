package listener

import (
	"errors"
	"net"
	"time"
)

// inspectTimeout bounds how long the TLS inspector waits for the first
// bytes of a connection. A TLS client sends its ClientHello at once; a
// client that stays silent that long speaks a server-first protocol
// (plaintext, necessarily) and gets the plaintext filter chain.
const inspectTimeout = 2 * time.Second

// Transport protocols of filter_chain_match, as Envoy names them.
const (
	ProtocolTLS       = "tls"
	ProtocolRawBuffer = "raw_buffer"
)

// verdict is the TLS inspector's reading of the first bytes.
type verdict uint8

const (
	needMore verdict = iota
	isTLS
	isPlaintext
)

// clientHelloPrefixLen is how many bytes classify needs at most.
const clientHelloPrefixLen = 6

// maxRecordLen is the largest TLS plaintext record (2^14) a ClientHello
// may come in.
const maxRecordLen = 1 << 14

// classify reads the beginning of a connection: a TLS handshake record
// (content type 22, legacy version 3.x, a plausible length) that starts a
// ClientHello (handshake type 1) is TLS; anything that departs from that
// shape, as soon as it does, is plaintext. It needs at most
// clientHelloPrefixLen bytes and reads no further.
func classify(b []byte) verdict {
	for i, c := range b[:min(len(b), clientHelloPrefixLen)] {
		switch i {
		case 0: // ContentType handshake
			if c != 0x16 {
				return isPlaintext
			}
		case 1: // ProtocolVersion major
			if c != 0x03 {
				return isPlaintext
			}
		case 2: // ProtocolVersion minor: SSL 3.0 to TLS 1.3
			if c > 0x04 {
				return isPlaintext
			}
		case 4: // record length, big endian, after its high byte
			if n := int(b[3])<<8 | int(c); n < 4 || n > maxRecordLen {
				return isPlaintext
			}
		case 5: // HandshakeType client_hello
			if c != 0x01 {
				return isPlaintext
			}
			return isTLS
		}
	}
	return needMore
}

// errClosedEarly is a connection that ended before the inspector could
// tell TLS from plaintext.
var errClosedEarly = errors.New("connection closed before the TLS inspector could read it")

// inspect tells whether conn starts with a TLS ClientHello, without
// consuming what it reads: the returned connection yields every byte
// (on Unix it is conn itself, read with MSG_PEEK). A client silent for
// inspectTimeout is plaintext.
func inspect(conn *net.TCPConn) (tls bool, c net.Conn, err error) {
	if err := conn.SetReadDeadline(time.Now().Add(inspectTimeout)); err != nil {
		return false, nil, err
	}
	v, c, err := peek(conn)
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return false, nil, err
	}
	if errors.Is(err, errDeadline) {
		return false, c, nil
	}
	if err != nil {
		return false, nil, err
	}
	return v == isTLS, c, nil
}
