package xdsclient_test

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/grpc/codes"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

var modes = []xdsclient.Mode{xdsclient.SotW, xdsclient.Delta}

// backendConfig is one outbound HTTP service: listener → route → EDS
// cluster → endpoints, plus a static inbound cluster.
func backendConfig(service string, port uint32) []types.Resource {
	return []types.Resource{
		httpListener("outbound:127.0.0.1:"+itoa(port), port, "outbound:"+service),
		routeConfig("outbound:"+service, service),
		edsCluster(service),
		cla(service, 8080),
		staticCluster("localhost:8080", 8080),
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func names[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// hasAll reports whether cfg holds exactly the given listeners, clusters,
// routes and endpoints.
func hasAll(cfg *xdsconfig.Config, listeners, clusters, routes, endpoints []string) bool {
	return cfg != nil &&
		slices.Equal(names(cfg.Listeners), listeners) &&
		slices.Equal(names(cfg.Clusters), clusters) &&
		slices.Equal(names(cfg.Routes), routes) &&
		slices.Equal(names(cfg.Endpoints), endpoints)
}

func TestInitialConfigAndUpdate(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			cp.setSnapshot("1", backendConfig("backend", 10001)...)
			app := &applier{}
			c := startClient(t, cp, mode, app)

			eventually(t, "the initial config", func() bool {
				return hasAll(app.last(),
					[]string{"outbound:127.0.0.1:10001"},
					[]string{"backend", "localhost:8080"},
					[]string{"outbound:backend"},
					[]string{"backend"})
			})
			if !c.Ready() || !c.Connected() {
				t.Errorf("Ready = %v, Connected = %v; want true, true", c.Ready(), c.Connected())
			}
			if mode == xdsclient.SotW {
				if v := c.AcceptedConfig().Versions[xdsconfig.ListenerType]; v != "1" {
					t.Errorf("accepted LDS version = %q, want 1", v)
				}
			}
			if v, ts := c.ResourceStatus(xdsconfig.ClusterType, "backend"); v == "" || ts.IsZero() {
				t.Errorf("ResourceStatus(backend) = %q, %v; want a version and a time", v, ts)
			}

			// An update: a second service, and the first one's endpoint moves.
			res := append(backendConfig("backend", 10001), backendConfig("web", 10002)[:4]...)
			res[3] = cla("backend", 9090)
			cp.setSnapshot("2", res...)
			eventually(t, "the update", func() bool {
				cfg := app.last()
				return hasAll(cfg,
					[]string{"outbound:127.0.0.1:10001", "outbound:127.0.0.1:10002"},
					[]string{"backend", "localhost:8080", "web"},
					[]string{"outbound:backend", "outbound:web"},
					[]string{"backend", "web"}) &&
					cfg.Endpoints["backend"].GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() == 9090
			})
			st := c.Stats()
			if st["control_plane.connected_state"] != 1 || st["xds.cds.update_success"] < 2 || st["xds.eds.update_success"] < 2 {
				t.Errorf("stats = %v", st)
			}
			if st["xds.cds.update_rejected"] != 0 {
				t.Errorf("update_rejected = %d, want 0", st["xds.cds.update_rejected"])
			}
		})
	}
}

func TestNACKKeepsTheAcceptedConfig(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			cp.setSnapshot("1", backendConfig("backend", 10001)...)
			app := &applier{reject: func(cfg *xdsconfig.Config) error {
				if _, ok := cfg.Clusters["bad"]; ok {
					return errors.New(`cluster "bad": lb_policy: MAGLEV is not supported`)
				}
				return nil
			}}
			c := startClient(t, cp, mode, app)
			eventually(t, "the initial config", func() bool {
				return c.Ready() && len(c.AcceptedConfig().Routes) == 1 && len(c.AcceptedConfig().Endpoints) == 1
			})
			before := c.AcceptedConfig()

			cp.setSnapshot("2", append(backendConfig("backend", 10001), staticCluster("bad", 1))...)
			eventually(t, "a NACK at the server", func() bool { return len(cp.rec.nacks(xdsconfig.ClusterType)) > 0 })
			msg := cp.rec.nacks(xdsconfig.ClusterType)[0]
			if !strings.Contains(msg, `cluster "bad": lb_policy`) {
				t.Errorf("NACK message = %q, want the Applier's error", msg)
			}
			for _, code := range cp.rec.nackCodes() {
				if code != int32(codes.InvalidArgument) {
					t.Errorf("NACK code = %d, want INVALID_ARGUMENT", code)
				}
			}
			// Other types may move on to version 2 (the SotW server resends
			// them with the new version); the clusters must not.
			if got := c.AcceptedConfig(); !maps.Equal(got.Clusters, before.Clusters) {
				t.Errorf("accepted clusters changed after a NACK: %v", names(got.Clusters))
			}
			if _, ok := app.last().Clusters["bad"]; ok {
				t.Errorf("the rejected cluster reached the accepted config")
			}
			if mode == xdsclient.SotW {
				if v := c.AcceptedConfig().Versions[xdsconfig.ClusterType]; v != "1" {
					t.Errorf("accepted CDS version after NACK = %q, want 1", v)
				}
			}
			if st := c.Stats(); st["xds.cds.update_rejected"] == 0 {
				t.Errorf("update_rejected = 0 after a NACK")
			}
			if r := c.TextReadouts()["xds.cds.last_rejection"]; !strings.Contains(r, "MAGLEV") {
				t.Errorf("last_rejection = %q", r)
			}

			// A fixed config goes through.
			cp.setSnapshot("3", backendConfig("web", 10002)...)
			eventually(t, "the config after the NACK", func() bool {
				_, ok := app.last().Clusters["web"]
				return ok
			})
		})
	}
}

func TestReconnectKeepsConfigAndResubscribes(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			cp.setSnapshot("1", backendConfig("backend", 10001)...)
			app := &applier{}
			c := startClient(t, cp, mode, app)
			eventually(t, "the initial config", func() bool {
				return hasAll(c.AcceptedConfig(),
					[]string{"outbound:127.0.0.1:10001"},
					[]string{"backend", "localhost:8080"},
					[]string{"outbound:backend"},
					[]string{"backend"})
			})

			addr := cp.addr
			cp.stop()
			eventually(t, "the disconnect", func() bool { return !c.Connected() })
			applied := app.count()
			accepted := c.AcceptedConfig()
			if len(accepted.Listeners) != 1 || len(accepted.Endpoints) != 1 {
				t.Fatalf("accepted config lost on disconnect: %v listeners", len(accepted.Listeners))
			}
			if c.TextReadouts()["control_plane.last_error"] == "" {
				t.Error("no last_error after the disconnect")
			}

			cp.setSnapshot("2", backendConfig("web", 10002)...)
			cp.start(addr)
			eventually(t, "the update after reconnecting", func() bool {
				return hasAll(app.last(),
					[]string{"outbound:127.0.0.1:10002"},
					[]string{"localhost:8080", "web"},
					[]string{"outbound:web"},
					[]string{"web"})
			})
			if app.count() <= applied {
				t.Error("no Apply after reconnecting")
			}
			if st := c.Stats(); st["control_plane.reconnects"] == 0 || st["control_plane.connects"] < 2 {
				t.Errorf("stats after reconnect = %v", st)
			}
		})
	}
}

func TestSubscriptionsFollowClustersAndListeners(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			cp.setSnapshot("1", backendConfig("a", 10001)...)
			app := &applier{}
			c := startClient(t, cp, mode, app)
			eventually(t, "the initial config", func() bool { return c.Ready() && len(app.last().Endpoints) == 1 })
			eventually(t, "subscriptions to a and outbound:a", func() bool {
				return maps.Equal(cp.rec.subscribed(xdsconfig.EndpointType), map[string]bool{"a": true}) &&
					maps.Equal(cp.rec.subscribed(xdsconfig.RouteType), map[string]bool{"outbound:a": true})
			})

			cp.setSnapshot("2", backendConfig("b", 10001)...)
			eventually(t, "the new subscriptions", func() bool {
				return maps.Equal(cp.rec.subscribed(xdsconfig.EndpointType), map[string]bool{"b": true}) &&
					maps.Equal(cp.rec.subscribed(xdsconfig.RouteType), map[string]bool{"outbound:b": true})
			})
			eventually(t, "the new endpoints and routes", func() bool {
				return hasAll(app.last(),
					[]string{"outbound:127.0.0.1:10001"},
					[]string{"b", "localhost:8080"},
					[]string{"outbound:b"},
					[]string{"b"})
			})

			// No EDS cluster and no RDS listener left: unsubscribe from all.
			cp.setSnapshot("3", staticCluster("localhost:8080", 8080))
			eventually(t, "empty subscriptions", func() bool {
				return len(cp.rec.subscribed(xdsconfig.EndpointType)) == 0 &&
					len(cp.rec.subscribed(xdsconfig.RouteType)) == 0
			})
			eventually(t, "the pruned config", func() bool {
				return hasAll(app.last(), []string{}, []string{"localhost:8080"}, []string{}, []string{})
			})
		})
	}
}

func TestReadyWaitsForReferencedResources(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			// The listener's route configuration never comes.
			res := backendConfig("backend", 10001)
			cp.setSnapshotUnchecked("1", res[0], res[2], res[3], res[4])
			app := &applier{}
			c := startClientWith(t, cp, mode, app, func(o *xdsclient.Options) { o.InitialFetchTimeout = 500 * time.Millisecond })
			eventually(t, "listeners and clusters", func() bool {
				cfg := app.last()
				return cfg != nil && len(cfg.Listeners) == 1 && len(cfg.Endpoints) == 1
			})
			if c.Ready() {
				t.Error("ready without the listener's route configuration")
			}
			eventually(t, "ready after the initial fetch timeout", c.Ready)

			// With everything in, ready comes at once.
			cp2 := newControlPlane(t)
			cp2.setSnapshot("1", res...)
			app2 := &applier{}
			c2 := startClientWith(t, cp2, mode, app2, func(o *xdsclient.Options) { o.InitialFetchTimeout = time.Hour })
			eventually(t, "ready", c2.Ready)
			if cfg := c2.AcceptedConfig(); len(cfg.Routes) != 1 || len(cfg.Endpoints) != 1 {
				t.Errorf("ready with %d routes, %d endpoints", len(cfg.Routes), len(cfg.Endpoints))
			}
		})
	}
}

func TestUnchangedContentIsACKedWithoutApply(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			cp.setSnapshot("1", backendConfig("backend", 10001)...)
			app := &applier{}
			c := startClient(t, cp, mode, app)
			eventually(t, "the initial config", func() bool {
				return c.Ready() && len(c.AcceptedConfig().Endpoints) == 1 && len(c.AcceptedConfig().Routes) == 1
			})
			applied := app.count()
			cp.setSnapshot("2", backendConfig("backend", 10001)...)
			if mode == xdsclient.SotW {
				eventually(t, "version 2 acknowledged", func() bool {
					v := c.AcceptedConfig().Versions
					return v[xdsconfig.ListenerType] == "2" && v[xdsconfig.ClusterType] == "2" &&
						v[xdsconfig.RouteType] == "2" && v[xdsconfig.EndpointType] == "2"
				})
			} else {
				// The delta server sends nothing for unchanged resources.
				time.Sleep(100 * time.Millisecond)
			}
			if app.count() != applied {
				t.Errorf("%d Apply calls for identical content", app.count()-applied)
			}
		})
	}
}
