package allowlist

// MeshMetric: the Prometheus listener "_kuma:metrics:prometheus:<clientId>"
// carries its settings for trellis-dp in the listener's metadata
// (filter_metadata "trellis.io/meshmetric": applications to scrape,
// include/exclude selectors), which the admin server reads when it serves
// the MeshMetric endpoint. Other metadata is accepted and, as in Envoy,
// has no effect.
func init() {
	allow(
		"envoy.config.listener.v3.Listener.metadata",
		"envoy.config.core.v3.Metadata.filter_metadata",
		"google.protobuf.Struct.fields",
		"google.protobuf.Value.null_value",
		"google.protobuf.Value.number_value",
		"google.protobuf.Value.string_value",
		"google.protobuf.Value.bool_value",
		"google.protobuf.Value.struct_value",
		"google.protobuf.Value.list_value",
		"google.protobuf.ListValue.values",
	)
}
