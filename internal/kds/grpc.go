package kds

import (
	"errors"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
)

// ServiceName is the gRPC service of KDS. Its two methods mirror Kuma's
// KDSSyncService:
//
//	rpc GlobalToZoneSync(stream DeltaDiscoveryRequest) returns (stream DeltaDiscoveryResponse);
//	rpc ZoneToGlobalSync(stream DeltaDiscoveryResponse) returns (stream DeltaDiscoveryRequest);
const ServiceName = "trellis.kds.v1.KDSSyncService"

// Full method names.
const (
	MethodGlobalToZone = "/" + ServiceName + "/GlobalToZoneSync"
	MethodZoneToGlobal = "/" + ServiceName + "/ZoneToGlobalSync"
)

// Metadata keys a zone sends when it opens a stream.
const (
	// MDZone names the zone.
	MDZone = "kds-zone"
	// MDAuthorization carries "Bearer <zone token>".
	MDAuthorization = "authorization"
	// MDInstance is the zone control plane's instance ID.
	MDInstance = "kds-instance"
	// MDSession identifies one connection: both streams carry the same.
	MDSession = "kds-session"
	// MDVersion is the zone control plane's version.
	MDVersion = "kds-version"
	// MDAccepted is the header the global sends once it accepted a
	// stream (a refusal ends the stream with a status and no headers).
	MDAccepted = "kds-accepted"
)

// syncServer is what the global implements.
type syncServer interface {
	globalToZone(grpc.ServerStream) error
	zoneToGlobal(grpc.ServerStream) error
}

// serviceDesc describes the service by hand (no generated code): both
// methods are bidirectional streams of go-control-plane's messages.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*syncServer)(nil),
	Streams: []grpc.StreamDesc{
		{
			StreamName:    "GlobalToZoneSync",
			Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(syncServer).globalToZone(ss) },
			ServerStreams: true,
			ClientStreams: true,
		},
		{
			StreamName:    "ZoneToGlobalSync",
			Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(syncServer).zoneToGlobal(ss) },
			ServerStreams: true,
			ClientStreams: true,
		},
	},
	Metadata: "trellis/kds.proto",
}

// accepted waits for the global's answer to a stream's opening: nil when
// it accepted the zone, else its refusal.
func accepted(s grpc.ClientStream) error {
	h, err := s.Header()
	if err != nil {
		return err
	}
	if len(h.Get(MDAccepted)) > 0 {
		return nil
	}
	// Refused: the status comes with the end of the stream.
	if err := s.RecvMsg(new(discovery.DeltaDiscoveryResponse)); err != nil {
		return err
	}
	return errors.New("the global sent a message before accepting the stream")
}

// streamDesc is the client's description of either method.
var streamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// serverResponses: the global's end of GlobalToZoneSync (it sends responses).
type serverResponses struct{ grpc.ServerStream }

func (s serverResponses) Send(r *discovery.DeltaDiscoveryResponse) error { return s.SendMsg(r) }
func (s serverResponses) Recv() (*discovery.DeltaDiscoveryRequest, error) {
	m := new(discovery.DeltaDiscoveryRequest)
	return m, s.RecvMsg(m)
}

// serverRequests: the global's end of ZoneToGlobalSync (it sends requests).
type serverRequests struct{ grpc.ServerStream }

func (s serverRequests) Send(r *discovery.DeltaDiscoveryRequest) error { return s.SendMsg(r) }
func (s serverRequests) Recv() (*discovery.DeltaDiscoveryResponse, error) {
	m := new(discovery.DeltaDiscoveryResponse)
	return m, s.RecvMsg(m)
}

// clientRequests: the zone's end of GlobalToZoneSync (it sends requests).
type clientRequests struct{ grpc.ClientStream }

func (c clientRequests) Send(r *discovery.DeltaDiscoveryRequest) error { return c.SendMsg(r) }
func (c clientRequests) Recv() (*discovery.DeltaDiscoveryResponse, error) {
	m := new(discovery.DeltaDiscoveryResponse)
	return m, c.RecvMsg(m)
}

// clientResponses: the zone's end of ZoneToGlobalSync (it sends responses).
type clientResponses struct{ grpc.ClientStream }

func (c clientResponses) Send(r *discovery.DeltaDiscoveryResponse) error { return c.SendMsg(r) }
func (c clientResponses) Recv() (*discovery.DeltaDiscoveryRequest, error) {
	m := new(discovery.DeltaDiscoveryRequest)
	return m, c.RecvMsg(m)
}

var (
	_ ResponseStream = serverResponses{}
	_ RequestStream  = serverRequests{}
	_ RequestStream  = clientRequests{}
	_ ResponseStream = clientResponses{}
)
