package server

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// An encoded resource marshals (as the snapshot cache does it) to exactly
// the bytes of the original, which decode back to it.
func TestEncodedResourceMarshalsToItsBytes(t *testing.T) {
	l := &listenerv3.Listener{
		Name: "inbound:10.0.0.1:8080",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}},
	}
	c := &clusterv3.Cluster{Name: "api", ConnectTimeout: durationpb.New(5e9)}
	o, err := newOutput(&build.Resources{Listeners: []*listenerv3.Listener{l}, Clusters: []*clusterv3.Cluster{c}})
	if err != nil {
		t.Fatal(err)
	}
	for ti, want := range map[int]proto.Message{0: l, 2: c} {
		raw, err := cachev3.MarshalResource(o[ti][0].res)
		if err != nil {
			t.Fatal(err)
		}
		direct, _ := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if string(raw) != string(direct) {
			t.Fatalf("%s: the cache's encoding differs from the resource's", o[ti][0].name)
		}
		got := want.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(raw, got); err != nil || !proto.Equal(got, want) {
			t.Fatalf("%s: decoded %v (%v), want %v", o[ti][0].name, got, err, want)
		}
	}
}
