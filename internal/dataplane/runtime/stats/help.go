package stats

import "strings"

// helps are the HELP texts of the families trellis-dp emits, by
// Prometheus name (Envoy's stat descriptions, shortened).
var helps = map[string]string{
	// Clusters (cluster.<name>.*).
	"envoy_cluster_upstream_cx_total":                                                     "Total upstream connections.",
	"envoy_cluster_upstream_cx_active":                                                    "Active upstream connections.",
	"envoy_cluster_upstream_cx_connect_fail":                                              "Upstream connection failures.",
	"envoy_cluster_upstream_cx_connect_timeout":                                           "Upstream connection timeouts.",
	"envoy_cluster_upstream_cx_none_healthy":                                              "Connections not made because no host was healthy.",
	"envoy_cluster_upstream_cx_rx_bytes_total":                                            "Bytes received from upstream hosts.",
	"envoy_cluster_upstream_cx_tx_bytes_total":                                            "Bytes sent to upstream hosts.",
	"envoy_cluster_upstream_cx_overflow":                                                  "Times the cluster's max_connections circuit breaker overflowed.",
	"envoy_cluster_upstream_rq_total":                                                     "Total upstream requests.",
	"envoy_cluster_upstream_rq_active":                                                    "Active upstream requests.",
	"envoy_cluster_upstream_rq_completed":                                                 "Upstream requests that got a response.",
	"envoy_cluster_external_upstream_rq_xx":                                               "Upstream responses by response code class, of requests from outside the proxy (every request, in trellis-dp).",
	"envoy_rbac_allowed":                                                                  "Connections allowed by the network RBAC filter.",
	"envoy_rbac_denied":                                                                   "Connections denied by the network RBAC filter.",
	"envoy_rbac_shadow_allowed":                                                           "Connections the network RBAC shadow rules would allow.",
	"envoy_rbac_shadow_denied":                                                            "Connections the network RBAC shadow rules would deny.",
	"envoy_cluster_upstream_rq_xx":                                                        "Upstream responses by response code class.",
	"envoy_cluster_upstream_rq_time":                                                      "Upstream request time in milliseconds, from the request's start to the end of the response.",
	"envoy_cluster_upstream_rq_timeout":                                                   "Upstream requests that timed out waiting for a response.",
	"envoy_cluster_upstream_rq_per_try_timeout":                                           "Upstream request attempts that hit the per-try timeout.",
	"envoy_cluster_upstream_rq_retry":                                                     "Upstream request retries.",
	"envoy_cluster_upstream_rq_retry_success":                                             "Upstream request retries that succeeded.",
	"envoy_cluster_upstream_rq_retry_overflow":                                            "Retries not made because of the max_retries circuit breaker.",
	"envoy_cluster_upstream_rq_pending_active":                                            "Requests waiting for a connection.",
	"envoy_cluster_upstream_rq_pending_total":                                             "Requests that waited for a connection.",
	"envoy_cluster_upstream_rq_pending_overflow":                                          "Requests that overflowed the pending or max_requests circuit breaker and failed.",
	"envoy_cluster_membership_healthy":                                                    "Current number of healthy hosts in the cluster.",
	"envoy_cluster_membership":                                                            "Current number of hosts in the cluster (Envoy's gauge membership_total: Prometheus reserves _total for counters).",
	"envoy_cluster_health_check_attempt":                                                  "Active health checks made.",
	"envoy_cluster_health_check_success":                                                  "Active health checks that passed.",
	"envoy_cluster_health_check_failure":                                                  "Active health checks that failed (HTTP status or network).",
	"envoy_cluster_health_check_network_failure":                                          "Active health checks that failed on the network.",
	"envoy_cluster_health_check_healthy":                                                  "Hosts the active health checker considers healthy.",
	"envoy_cluster_outlier_detection_ejections_active":                                    "Hosts currently ejected by outlier detection.",
	"envoy_cluster_outlier_detection_ejections_enforced_total":                            "Ejections enforced by outlier detection.",
	"envoy_cluster_outlier_detection_ejections_overflow":                                  "Ejections not made because of max_ejection_percent.",
	"envoy_cluster_outlier_detection_ejections_enforced_consecutive_5xx":                  "Enforced consecutive 5xx ejections.",
	"envoy_cluster_outlier_detection_ejections_enforced_consecutive_gateway_failure":      "Enforced consecutive gateway failure ejections.",
	"envoy_cluster_outlier_detection_ejections_enforced_consecutive_local_origin_failure": "Enforced consecutive local-origin failure ejections.",
	"envoy_cluster_outlier_detection_ejections_enforced_success_rate":                     "Enforced success-rate ejections.",
	"envoy_cluster_outlier_detection_ejections_enforced_failure_percentage":               "Enforced failure-percentage ejections.",
	"envoy_cluster_outlier_detection_ejections_detected_consecutive_5xx":                  "Detected consecutive 5xx ejections (enforced or not).",
	"envoy_cluster_outlier_detection_ejections_detected_consecutive_gateway_failure":      "Detected consecutive gateway failure ejections (enforced or not).",
	"envoy_cluster_outlier_detection_ejections_detected_consecutive_local_origin_failure": "Detected consecutive local-origin failure ejections (enforced or not).",
	"envoy_cluster_manager_active_clusters":                                               "Clusters in use.",
	"envoy_cluster_manager_cds_update_attempt":                                            "CDS updates received.",
	"envoy_cluster_manager_cds_update_success":                                            "CDS updates applied.",
	"envoy_cluster_manager_cds_update_rejected":                                           "CDS updates rejected (NACKed).",
	// TLS (listener.<address>.ssl.*, cluster.<name>.ssl.*).
	"envoy_listener_ssl_handshake":           "Successful TLS handshakes.",
	"envoy_listener_ssl_connection_error":    "TLS connection errors, failed handshakes included.",
	"envoy_listener_ssl_no_certificate":      "TLS connections whose peer sent no certificate.",
	"envoy_listener_ssl_fail_verify_no_cert": "TLS connections refused because the peer sent no certificate.",
	"envoy_listener_ssl_fail_verify_error":   "TLS connections refused because the peer's certificate did not verify.",
	"envoy_listener_ssl_fail_verify_san":     "TLS connections refused because the peer's certificate SAN did not match.",
	"envoy_listener_ssl_fail_no_secret":      "TLS connections refused because an SDS secret was missing.",
	"envoy_listener_ssl_session_reused":      "TLS sessions resumed.",
	"envoy_cluster_ssl_handshake":            "Successful upstream TLS handshakes.",
	"envoy_cluster_ssl_connection_error":     "Upstream TLS connection errors, failed handshakes included.",
	"envoy_cluster_ssl_no_certificate":       "Upstream TLS connections whose server sent no certificate.",
	"envoy_cluster_ssl_fail_verify_no_cert":  "Upstream TLS connections refused because the server sent no certificate.",
	"envoy_cluster_ssl_fail_verify_error":    "Upstream TLS connections refused because the server's certificate did not verify.",
	"envoy_cluster_ssl_fail_verify_san":      "Upstream TLS connections refused because the server's certificate SAN did not match.",
	"envoy_cluster_ssl_fail_no_secret":       "Upstream TLS connections not made because an SDS secret was missing.",
	"envoy_cluster_ssl_session_reused":       "Upstream TLS sessions resumed.",
	// Listeners (listener.<address>.*).
	"envoy_listener_downstream_cx_total":            "Total connections accepted.",
	"envoy_listener_downstream_cx_active":           "Active connections.",
	"envoy_listener_downstream_cx_destroy":          "Connections closed.",
	"envoy_listener_no_filter_chain_match":          "Connections that matched no filter chain.",
	"envoy_listener_manager_total_listeners_active": "Listeners in use.",
	"envoy_listener_manager_lds_update_attempt":     "LDS updates received.",
	"envoy_listener_manager_lds_update_success":     "LDS updates applied.",
	"envoy_listener_manager_lds_update_rejected":    "LDS updates rejected (NACKed).",
	// HTTP connection managers (http.<stat_prefix>.*).
	"envoy_http_downstream_cx_total":       "Total HTTP connections.",
	"envoy_http_downstream_cx_active":      "Active HTTP connections.",
	"envoy_http_downstream_rq_total":       "Total requests.",
	"envoy_http_downstream_rq_http1_total": "Total HTTP/1.1 requests.",
	"envoy_http_downstream_rq_http2_total": "Total HTTP/2 requests.",
	"envoy_http_downstream_rq_completed":   "Requests that got a response.",
	"envoy_http_downstream_rq_xx":          "Responses by response code class.",
	"envoy_http_downstream_rq_time":        "Request time in milliseconds, from the request's start to the end of the response.",
	"envoy_http_no_route":                  "Requests that matched no route.",
	"envoy_http_no_cluster":                "Requests whose route named an unknown cluster.",
	"envoy_http_rq_direct_response":        "Requests answered with a direct response.",
	"envoy_http_rq_redirect":               "Requests answered with a redirect.",
	"envoy_http_rbac_allowed":              "Requests allowed by the RBAC filter.",
	"envoy_http_rbac_denied":               "Requests denied by the RBAC filter.",
	"envoy_http_rbac_shadow_allowed":       "Requests the RBAC shadow rules would allow.",
	"envoy_http_rbac_shadow_denied":        "Requests the RBAC shadow rules would deny.",
	// TCP proxies (tcp.<stat_prefix>.*).
	"envoy_tcp_downstream_cx_total":          "Total connections proxied.",
	"envoy_tcp_downstream_cx_no_route":       "Connections with no route to a cluster.",
	"envoy_tcp_downstream_cx_rx_bytes_total": "Bytes received from downstream.",
	"envoy_tcp_downstream_cx_tx_bytes_total": "Bytes sent to downstream.",
	"envoy_tcp_idle_timeout":                 "Connections closed by the idle timeout.",
	// xDS.
	"envoy_control_plane_connected_state": "1 while the ADS stream to the control plane is open, else 0.",
	"envoy_control_plane_connects":        "ADS streams opened.",
	"envoy_control_plane_reconnects":      "ADS connection attempts after a failure.",
	"envoy_xds_ready":                     "1 once the first configuration is applied.",
	// Process.
	"envoy_server_live":             "1 while the proxy is live (configured and not draining), else 0.",
	"envoy_server_state":            "The proxy's state: 0 live, 1 draining, 2 pre-initializing.",
	"envoy_server_uptime":           "Seconds since the proxy started.",
	"envoy_server_memory_allocated": "Bytes of heap memory in use.",
	"envoy_server_memory_heap_size": "Bytes of heap memory obtained from the operating system.",
	"envoy_server_concurrency":      "Number of OS threads that run Go code (GOMAXPROCS).",
}

// Help returns the HELP text of a Prometheus family: the described one
// when there is, else one made of the name.
func Help(name string, k Kind) string {
	if h, ok := helps[name]; ok {
		return h
	}
	kind := "Counter"
	switch k {
	case KindGauge:
		kind = "Gauge"
	case KindHistogram:
		kind = "Histogram (milliseconds)"
	}
	return kind + " " + strings.TrimPrefix(name, "envoy_") + "."
}
