package main

import (
	"log/slog"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func nodeWith(t *testing.T, dataplane string) *corev3.Node {
	t.Helper()
	meta, err := structpb.NewStruct(map[string]any{"dataplane.resource": dataplane})
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Node{Id: "default.web-1", Metadata: meta}
}

// The DNS port is announced for transparent proxies only, and not with
// --dns-port 0.
func TestAnnounceDNSPort(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tp := `{"type":"Dataplane","networking":{"address":"10.0.0.1","transparentProxying":{"redirectPortInbound":15006}}}`
	for _, tc := range []struct {
		dataplane string
		port      uint32
		want      string
	}{
		{tp, 15053, "15053"},
		{tp, 5353, "5353"},
		{tp, 0, ""},
		{`{"type":"Dataplane","networking":{"address":"10.0.0.1"}}`, 15053, ""},
	} {
		node := nodeWith(t, tc.dataplane)
		if err := announceDNSPort(node, tc.port, log); err != nil {
			t.Fatal(err)
		}
		if got := node.GetMetadata().GetFields()[metaDNSPort].GetStringValue(); got != tc.want {
			t.Errorf("port %d, %s: announced %q, want %q", tc.port, tc.dataplane, got, tc.want)
		}
	}
	if err := announceDNSPort(nodeWith(t, tp), 70000, log); err == nil {
		t.Error("--dns-port 70000 accepted")
	}
}
