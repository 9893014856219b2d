// Package peer describes the downstream peer of a connection as the
// filters see it: whether it presented a verified certificate and the
// names in that certificate (URI SANs such as spiffe://default/web, DNS
// SANs, the subject). The listener puts it in the context of every request
// of the connection; RBAC reads it from there.
package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
)

// Identity is what is known about a connection's peer. A nil *Identity is
// a plaintext peer: it has no principal.
type Identity struct {
	// Authenticated is true when the peer presented a certificate that
	// was verified against the trusted CAs.
	Authenticated bool
	// URIs are the certificate's URI SANs, exactly as encoded.
	URIs []string
	// DNSNames are the certificate's DNS SANs.
	DNSNames []string
	// Subject is the certificate's subject in RFC 2253 form.
	Subject string
}

// FromConnectionState returns the Identity of the peer of a completed TLS
// handshake whose peer certificate, if any, was verified; nil when cs is
// nil.
func FromConnectionState(cs *tls.ConnectionState) *Identity {
	if cs == nil {
		return nil
	}
	id := &Identity{}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		id.Authenticated = true
		id.URIs = URISANs(leaf)
		id.DNSNames = leaf.DNSNames
		id.Subject = leaf.Subject.String()
	}
	return id
}

// Principal returns the name to log for the peer: its first URI SAN, else
// its first DNS SAN, else its subject; "" for a peer without certificate.
func (id *Identity) Principal() string {
	switch {
	case id == nil || !id.Authenticated:
		return ""
	case len(id.URIs) > 0:
		return id.URIs[0]
	case len(id.DNSNames) > 0:
		return id.DNSNames[0]
	default:
		return id.Subject
	}
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the Identity in ctx, or nil (a plaintext peer).
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}

// oidSubjectAltName is the X.509 subjectAltName extension.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// ErrBadSAN reports a subjectAltName extension that does not decode.
var ErrBadSAN = errors.New("malformed subjectAltName extension")

// URISANs returns the URI SANs of cert as the bytes encode them (Go's
// parsed cert.URIs may normalize them; SAN matchers compare the encoded
// form, as Envoy does). A malformed extension yields no names: x509
// refuses to parse such certificates anyway.
func URISANs(cert *x509.Certificate) []string {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			uris, err := ParseURISANs(ext.Value)
			if err != nil {
				return nil
			}
			return uris
		}
	}
	return nil
}

// uriTag is the context-specific tag of uniformResourceIdentifier in
// GeneralName (RFC 5280 §4.2.1.6).
const uriTag = 6

// ParseURISANs returns the uniformResourceIdentifier entries of a DER
// subjectAltName extension value (GeneralNames ::= SEQUENCE OF
// GeneralName).
func ParseURISANs(der []byte) ([]string, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, errors.Join(ErrBadSAN, err)
	}
	if len(rest) > 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, ErrBadSAN
	}
	var out []string
	body := seq.Bytes
	for len(body) > 0 {
		var gn asn1.RawValue
		body, err = asn1.Unmarshal(body, &gn)
		if err != nil {
			return nil, errors.Join(ErrBadSAN, err)
		}
		if gn.Class != asn1.ClassContextSpecific || gn.Tag != uriTag {
			continue
		}
		if gn.IsCompound || !isIA5(gn.Bytes) {
			return nil, ErrBadSAN
		}
		out = append(out, string(gn.Bytes))
	}
	return out, nil
}

func isIA5(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
