package dns

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandleMessage feeds arbitrary bytes to the message handling, over
// UDP and TCP, with a forwarder that echoes the query back as a reply or
// fails: it must never panic, and a reply must be a DNS response to the
// query's ID that fits what the client takes.
func FuzzHandleMessage(f *testing.F) {
	for _, name := range []string{"backend.mesh.", "BACKEND.Mesh.", "nope.mesh.", "example.com.", "."} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeANY} {
			m := new(dns.Msg)
			m.SetQuestion(name, qtype)
			if qtype == dns.TypeAAAA {
				m.SetEdns0(4096, true)
			}
			b, _ := m.Pack()
			f.Add(b, false)
		}
	}
	f.Add([]byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'b'}, true)
	f.Add([]byte{1, 2, 3}, false)
	l := dnsListener(f, "kuma:dns", 15053, meshTable, true)
	cfg, err := ParseListener(l, nil)
	if err != nil {
		f.Fatal(err)
	}
	echo := func(_ context.Context, q []byte, _ bool) ([]byte, error) {
		if len(q)%3 == 0 {
			return nil, errors.New("upstream failed")
		}
		r := append([]byte(nil), q...)
		if len(r) > 2 {
			r[2] |= 0x80
		}
		return r, nil
	}
	f.Fuzz(func(t *testing.T, msg []byte, tcp bool) {
		resp := handleMessage(context.Background(), cfg, echo, msg, tcp)
		if resp == nil {
			return
		}
		if len(resp) < headerLen || len(msg) < 2 || resp[0] != msg[0] || resp[1] != msg[1] || resp[2]&0x80 == 0 {
			t.Fatalf("reply %x to %x: not a response with the query's ID", resp, msg)
		}
		if !tcp && len(resp) > dns.MaxMsgSize {
			t.Fatalf("reply of %d bytes over UDP", len(resp))
		}
	})
}
