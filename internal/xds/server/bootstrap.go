package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// BootstrapRequest is what trellis-dp (like kuma-dp) posts to /bootstrap.
type BootstrapRequest struct {
	Mesh              string `json:"mesh"`
	Name              string `json:"name"`
	ProxyType         string `json:"proxyType"`
	DataplaneToken    string `json:"dataplaneToken"`
	DataplaneResource string `json:"dataplaneResource"`
	AdminAddress      string `json:"adminAddress"`
	XDSMode           string `json:"xdsMode"`
	Version           struct {
		TrellisDp struct {
			Version string `json:"version"`
		} `json:"trellisDp"`
	} `json:"version"`
	// DNSPort is the port of the proxy's DNS server, as kuma-dp sends it;
	// it becomes the node metadata dataplane.dns.port.
	DNSPort uint32 `json:"dnsPort"`
}

// Defaults of the generated bootstrap.
const (
	defaultAdminAddress = "127.0.0.1:9901"
	adsClusterName      = "ads_cluster"
	maxBootstrapBody    = 1 << 20
)

type stdError struct {
	Type              string               `json:"type"`
	Status            int                  `json:"status"`
	Title             string               `json:"title"`
	Detail            string               `json:"detail"`
	InvalidParameters []validate.Violation `json:"invalid_parameters,omitempty"`
}

func writeStdError(w http.ResponseWriter, status int, detail string, params ...validate.Violation) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(stdError{Type: "/std-errors", Status: status, Title: http.StatusText(status), Detail: detail, InvalidParameters: params})
}

// handleBootstrap validates the proxy's Dataplane and answers its bootstrap.
func (s *Server) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBootstrapBody))
	if err != nil {
		writeStdError(w, http.StatusRequestEntityTooLarge, "the bootstrap request is too large or unreadable")
		return
	}
	var req BootstrapRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeStdError(w, http.StatusBadRequest, "the bootstrap request is not valid JSON: "+err.Error())
		return
	}
	if isZoneProxyType(req.ProxyType) {
		s.handleZoneProxyBootstrap(w, r, &req) // zoneproxy.go
		return
	}
	res, verr := s.validateBootstrap(r, &req)
	if verr == nil && res == nil {
		if res = s.storedDataplane(w, r, &req); res == nil { // bootstrap_stored.go
			return
		}
	}
	if verr != nil {
		writeStdError(w, http.StatusBadRequest, "the bootstrap request is not valid", verr.Violations...)
		return
	}
	if !s.authorizeBootstrap(w, r, req.DataplaneToken, res) {
		return
	}
	b, err := s.bootstrapFor(&req, res)
	if err != nil {
		s.log.Error("building a bootstrap", "mesh", req.Mesh, "name", req.Name, "err", err)
		writeStdError(w, http.StatusInternalServerError, "building the bootstrap failed; see the control plane's log")
		return
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		writeStdError(w, http.StatusInternalServerError, "encoding the bootstrap failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(js)
}

func (s *Server) validateBootstrap(r *http.Request, req *BootstrapRequest) (*resource.Resource, *validate.Error) {
	var errs validate.Errors
	root := validate.Root()
	if reason := validate.Name(req.Mesh); reason != "" {
		errs.Add(root.Field("mesh"), reason)
	}
	if reason := validate.Name(req.Name); reason != "" {
		errs.Add(root.Field("name"), reason)
	}
	switch req.XDSMode {
	case "", "sotw", "delta":
	default:
		errs.Addf(root.Field("xdsMode"), "unknown value %q: must be sotw or delta", req.XDSMode)
	}
	if !errs.Empty() {
		return nil, asValidate(errs)
	}
	if _, err := s.mgr.Get(r.Context(), s.meshDesc(), "", req.Mesh); errors.Is(err, store.ErrNotFound) {
		errs.Addf(root.Field("mesh"), "mesh %q does not exist", req.Mesh)
		return nil, asValidate(errs)
	}
	if req.DataplaneResource == "" {
		return nil, nil // the stored Dataplane (Kubernetes: written by the Pod controller)
	}
	res, err := resource.DecodeForPath(s.dpDesc(), []byte(req.DataplaneResource), req.Mesh, req.Name)
	if err != nil {
		var ve *validate.Error
		if errors.As(err, &ve) {
			return nil, validate.Prefixed(root.Field("dataplaneResource"), ve)
		}
		errs.Add(root.Field("dataplaneResource"), err.Error())
		return nil, asValidate(errs)
	}
	return res, nil
}

func asValidate(errs validate.Errors) *validate.Error {
	var ve *validate.Error
	errors.As(errs.Err(), &ve)
	return ve
}

// bootstrapFor builds the Envoy bootstrap of a proxy (docs/xds-contract.md).
func (s *Server) bootstrapFor(req *BootstrapRequest, res *resource.Resource) (*bootstrapv3.Bootstrap, error) {
	dpJSON, err := resource.Encode(res)
	if err != nil {
		return nil, err
	}
	admin := req.AdminAddress
	if admin == "" {
		admin = defaultAdminAddress
	}
	adminHost, adminPortStr, err := net.SplitHostPort(admin)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", admin, err)
	}
	adminPort, _ := strconv.Atoi(adminPortStr)
	meta, err := structpb.NewStruct(map[string]any{
		MetaDataplane:    string(dpJSON),
		MetaAdminAddress: admin,
		MetaVersion:      req.Version.TrellisDp.Version,
	})
	if err != nil {
		return nil, err
	}
	if req.DataplaneResource == "" {
		meta.Fields[MetaDataplaneStored] = structpb.NewBoolValue(true) // bootstrap_stored.go
	}
	if req.DNSPort != 0 {
		meta.Fields[MetaDNSPort] = structpb.NewStringValue(strconv.FormatUint(uint64(req.DNSPort), 10))
	}
	cluster := ""
	if dp, ok := res.Spec.(*mesh.Dataplane); ok && len(dp.ServiceNames()) > 0 {
		cluster = dp.ServiceNames()[0]
	}
	apiType := corev3.ApiConfigSource_GRPC
	if req.XDSMode == "delta" {
		apiType = corev3.ApiConfigSource_DELTA_GRPC
	}
	cpHost, cpPort := s.advertisedHostPort()
	sinks, flush, err := s.statsSinks()
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: req.Mesh + "." + req.Name, Cluster: cluster, Metadata: meta},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             apiType,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: adsClusterName}},
				}},
			},
			LdsConfig: adsConfigSource(),
			CdsConfig: adsConfigSource(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{{
				Name:                 adsClusterName,
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
				ConnectTimeout:       durationpb.New(connectTimeoutToCP),
				LoadAssignment: &endpointv3.ClusterLoadAssignment{
					ClusterName: adsClusterName,
					Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
						HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
							Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
								Address: cpHost, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: cpPort},
							}}},
						}},
					}}}},
				},
			}},
		},
		Admin: &bootstrapv3.Admin{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: adminHost, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(adminPort)},
		}}}},
	}
	b.StatsSinks, b.StatsFlushInterval = sinks, flush
	return b, nil
}

func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}
