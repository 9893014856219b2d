package xdsclient

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// update is what one response changes in one type.
type update struct {
	typ resourceType
	// version is the response's version_info (SotW) or
	// system_version_info (delta).
	version string
	// resources are added or replaced, by name.
	resources map[string]received
	// removed are deleted (delta).
	removed []string
	// replaceAll deletes every resource of the type not in resources (SotW
	// LDS and CDS).
	replaceAll bool
}

// received is one decoded resource and the version the server gave it.
type received struct {
	msg     proto.Message
	version string
}

// applyUpdate builds the next Config from the accepted one and u, prunes
// endpoints, routes and secrets nothing references any more, and hands it
// to the Applier. On success it becomes the accepted Config; on error the
// accepted Config stays and the error is the NACK's detail.
func (c *Client) applyUpdate(ctx context.Context, u update) error {
	cur := c.AcceptedConfig()
	next := cur.Clone()
	url := u.typ.url
	if u.replaceAll {
		for _, name := range resourceNames(next, url) {
			if _, ok := u.resources[name]; !ok {
				deleteResource(next, url, name)
			}
		}
	}
	for name, r := range u.resources {
		putResource(next, name, r.msg)
	}
	for _, name := range u.removed {
		deleteResource(next, url, name)
	}
	for _, t := range resourceTypes {
		if t.wildcard {
			continue
		}
		wanted := wantedNames(next, t.url)
		for _, name := range resourceNames(next, t.url) {
			if !wanted.has(name) {
				if _, sent := u.resources[name]; sent && t.url == url {
					c.log.Debug("ignoring a resource nothing references", "type", t.short, "name", name)
				}
				deleteResource(next, t.url, name)
			}
		}
	}
	next.Versions[url] = u.version

	// A response that changes nothing (a resend after a reconnect, or a
	// new version of identical content) is acknowledged without
	// rebuilding the proxy.
	if sameResources(cur, next) {
		c.log.Debug("update changes nothing", "type", u.typ.short, "version", u.version)
	} else if err := c.opts.Applier.Apply(ctx, next); err != nil {
		c.rejected(u.typ, err)
		return err
	}
	c.commit(cur, next, u)
	c.log.Debug("update accepted", "type", u.typ.short, "version", u.version,
		"resources", len(u.resources), "removed", len(u.removed))
	return nil
}

// attempt counts a response of a type.
func (c *Client) attempt(t resourceType) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.types[t.url].attempts++
}

// rejected counts a NACK of a type.
func (c *Client) rejected(t resourceType, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.types[t.url]
	s.rejected++
	s.lastRejection = err.Error()
	c.log.Warn("update rejected", "type", t.short, "error", err)
}

// commit makes next the accepted Config and updates the per-resource
// versions and timestamps.
func (c *Client) commit(cur, next *xdsconfig.Config, u update) {
	now := time.Now()
	meta := make(map[string]map[string]resourceMeta, len(c.meta))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range resourceTypes {
		old := c.meta[t.url]
		m := make(map[string]resourceMeta, len(old))
		for _, name := range resourceNames(next, t.url) {
			prev, had := old[name]
			r, sent := u.resources[name]
			switch {
			case t.url != u.typ.url || !sent:
				m[name] = prev
			case had && proto.Equal(getResource(cur, t.url, name), r.msg):
				m[name] = resourceMeta{version: r.version, updated: prev.updated}
			default:
				m[name] = resourceMeta{version: r.version, updated: now}
			}
		}
		meta[t.url] = m
	}
	c.meta = meta
	c.accepted = next
	c.types[u.typ.url].accepted++
	c.types[u.typ.url].lastRejection = ""
	if !c.ready && c.types[xdsconfig.ClusterType].accepted > 0 && c.types[xdsconfig.ListenerType].accepted > 0 {
		if c.initialAt.IsZero() {
			c.initialAt = now
		}
		if len(missingReferences(next)) == 0 {
			c.markReadyLocked()
		}
	}
}

// markReadyLocked records that the initial configuration is in; c.mu is
// held.
func (c *Client) markReadyLocked() {
	c.ready = true
	c.log.Info("initial configuration applied", "listeners", len(c.accepted.Listeners), "clusters", len(c.accepted.Clusters))
}

// missingReferences returns, per type short name, the endpoints, routes
// and secrets cfg references but does not hold yet.
func missingReferences(cfg *xdsconfig.Config) map[string][]string {
	out := map[string][]string{}
	for _, t := range resourceTypes {
		if t.wildcard {
			continue
		}
		for _, name := range sorted(wantedNames(cfg, t.url)) {
			if getResource(cfg, t.url, name) == nil {
				out[t.short] = append(out[t.short], name)
			}
		}
	}
	return out
}

// sameResources reports whether a and b hold equal resources (versions
// aside).
func sameResources(a, b *xdsconfig.Config) bool {
	return sameMap(a.Listeners, b.Listeners) && sameMap(a.Routes, b.Routes) &&
		sameMap(a.Clusters, b.Clusters) && sameMap(a.Endpoints, b.Endpoints) &&
		sameMap(a.Secrets, b.Secrets)
}

func sameMap[M proto.Message](a, b map[string]M) bool {
	if len(a) != len(b) {
		return false
	}
	for name, ra := range a {
		rb, ok := b[name]
		if !ok || !proto.Equal(ra, rb) {
			return false
		}
	}
	return true
}

// resourceVersions returns the versions of the accepted resources of a
// type, for delta's initial_resource_versions.
func (c *Client) resourceVersions(typeURL string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.meta[typeURL]))
	for name, m := range c.meta[typeURL] {
		out[name] = m.version
	}
	return out
}

// acceptedVersion returns the version_info last accepted for a type.
func (c *Client) acceptedVersion(typeURL string) string {
	return c.AcceptedConfig().Versions[typeURL]
}

// subscription returns what the client subscribes to for a type, given
// the accepted Config: nil for a wildcard type, else the referenced names.
func (c *Client) subscription(t resourceType) set {
	if t.wildcard {
		return nil
	}
	return wantedNames(c.AcceptedConfig(), t.url)
}

// sorted returns the names of s in order, for deterministic requests.
func sorted(s set) []string {
	return slices.Sorted(maps.Keys(s))
}

// decodeError wraps a resource decoding failure with its position.
func decodeError(t resourceType, i int, name string, err error) error {
	if name != "" {
		return fmt.Errorf("%s resource %q: %w", t.short, name, err)
	}
	return fmt.Errorf("%s resource [%d]: %w", t.short, i, err)
}
