package vip

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Kind is the store kind of the allocation records. It is not an API
// resource: one record per mesh, named RecordName, deleted with its mesh.
const Kind = "MeshVIPs"

// RecordName is the name of a mesh's allocation record.
const RecordName = "dns-vips"

// maxAttempts bounds how often Sync retries a write that lost a race.
const maxAttempts = 16

// ErrExhausted means the CIDR has no free address left.
var ErrExhausted = errors.New("no free virtual IP left in the CIDR")

// record is the stored allocation of one mesh.
type record struct {
	// VIPs holds each service's allocation, by service.
	VIPs map[string]allocation `json:"vips"`
}

type allocation struct {
	IP string `json:"ip"`
	// GoneSince is set while the service has no inbound in the mesh; the
	// address is released ReleaseAfter later.
	GoneSince *time.Time `json:"goneSince,omitempty"`
}

// Allocator allocates and remembers the VIPs of the meshes' services. It
// is safe for concurrent use.
type Allocator struct {
	st  store.Store
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	// last is, per mesh, the result of the last successful Sync, reused
	// while the mesh's services do not change.
	last map[string]synced
}

type synced struct {
	services string // the services, joined
	table    map[string]proxymodel.VIP
	// recheck is when an address kept for a vanished service is due for
	// release (zero: none is kept).
	recheck time.Time
}

// New returns an allocator over st. A zero cfg.CIDR takes the defaults.
func New(st store.Store, cfg Config, log *slog.Logger) *Allocator {
	if !cfg.CIDR.IsValid() {
		cfg = DefaultConfig()
	}
	if cfg.ReleaseAfter <= 0 {
		cfg.ReleaseAfter = DefaultReleaseAfter
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Allocator{st: st, cfg: cfg, log: log.With("component", "vip-allocator"), now: time.Now, last: map[string]synced{}}
}

// Logger returns the allocator's logger (component vip-allocator).
func (a *Allocator) Logger() *slog.Logger { return a.log }

// Config returns the allocator's configuration.
func (a *Allocator) Config() Config { return a.cfg }

// Sync makes sure every service of services (a mesh's kuma.io/service
// values, in any order, duplicates allowed) has a VIP in the store and
// returns their VIPs by service. Services no longer listed are marked gone
// and released ReleaseAfter later. When the store cannot be read or
// written it returns what it knows (possibly nothing) with the error: a
// service without an address simply gets no VIP until a later Sync.
func (a *Allocator) Sync(ctx context.Context, mesh string, services []string) (map[string]proxymodel.VIP, error) {
	services = slices.Clone(services)
	slices.Sort(services)
	services = slices.Compact(services)
	joined := strings.Join(services, "\x00")
	now := a.now()
	a.mu.Lock()
	prev, ok := a.last[mesh]
	a.mu.Unlock()
	if ok && prev.services == joined && (prev.recheck.IsZero() || now.Before(prev.recheck)) {
		return prev.table, nil
	}
	var lastErr error
	for attempt := range maxAttempts {
		if attempt > 0 && !backoff(ctx, attempt) {
			break
		}
		table, recheck, err := a.syncOnce(ctx, mesh, services, now)
		if err == nil {
			a.mu.Lock()
			a.last[mesh] = synced{services: joined, table: table, recheck: recheck}
			a.mu.Unlock()
			return table, nil
		}
		lastErr = err
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrAlreadyExists) {
			break
		}
	}
	a.mu.Lock()
	delete(a.last, mesh)
	a.mu.Unlock()
	return nil, fmt.Errorf("allocating the virtual IPs of mesh %q: %w", mesh, lastErr)
}

// backoff waits before the attempt-th try after a lost race: a random
// time below 2^attempt ms (at most 256 ms), so instances that keep
// colliding spread out. It reports false when ctx ended.
func backoff(ctx context.Context, attempt int) bool {
	limit := time.Millisecond << min(attempt, 8)
	t := time.NewTimer(rand.N(limit) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Forget drops what the allocator remembers of a mesh (it was deleted).
func (a *Allocator) Forget(mesh string) {
	a.mu.Lock()
	delete(a.last, mesh)
	a.mu.Unlock()
}

// syncOnce reads the mesh's record, updates it and writes it when it
// changed. A lost race returns store.ErrConflict or ErrAlreadyExists.
func (a *Allocator) syncOnce(ctx context.Context, mesh string, services []string, now time.Time) (map[string]proxymodel.VIP, time.Time, error) {
	key := store.Key{Kind: Kind, Mesh: mesh, Name: RecordName}
	rec, err := a.st.Get(ctx, key)
	var stored record
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = nil
	case err != nil:
		return nil, time.Time{}, err
	default:
		if err := json.Unmarshal(rec.Spec, &stored); err != nil {
			// A record we cannot read is rewritten from scratch rather than
			// blocking every new service forever.
			a.log.Error("the stored virtual IPs do not decode; allocating anew", "mesh", mesh, "err", err)
			stored = record{}
		}
	}
	if stored.VIPs == nil {
		stored.VIPs = map[string]allocation{}
	}
	changed, recheck, allocErr := a.update(stored.VIPs, services, now)
	if allocErr != nil {
		a.log.Error("allocating virtual IPs", "mesh", mesh, "err", allocErr)
	}
	if changed {
		spec, err := json.Marshal(stored)
		if err != nil {
			return nil, time.Time{}, err
		}
		if rec == nil {
			err = a.st.Create(ctx, &store.Record{Kind: Kind, Mesh: mesh, Name: RecordName, Spec: spec})
		} else {
			rec.Spec = spec
			err = a.st.Update(ctx, rec)
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		a.log.Info("virtual IPs changed", "mesh", mesh, "services", len(services))
	}
	table := make(map[string]proxymodel.VIP, len(services))
	for _, svc := range services {
		al, ok := stored.VIPs[svc]
		if !ok {
			continue
		}
		ip := netip.MustParseAddr(al.IP) // update keeps only valid addresses
		v := proxymodel.VIP{Service: svc, Name: a.cfg.Name(svc), IPv4: ip.String()}
		if v6 := a.cfg.v6(ip); v6.IsValid() {
			v.IPv6 = v6.String()
		}
		table[svc] = v
	}
	return table, recheck, nil
}

// update brings vips in line with services: addresses for new services
// (and for ones whose address is invalid, outside the CIDR or taken
// twice), gone marks for vanished ones, releases for those gone long
// enough. It reports whether vips changed and when the next release is
// due.
func (a *Allocator) update(vips map[string]allocation, services []string, now time.Time) (bool, time.Time, error) {
	present := make(map[string]bool, len(services))
	for _, s := range services {
		present[s] = true
	}
	changed := false
	var recheck time.Time
	used := map[netip.Addr]bool{}
	for _, svc := range slices.Sorted(maps.Keys(vips)) {
		al := vips[svc]
		ip, err := netip.ParseAddr(al.IP)
		if err != nil || !a.cfg.CIDR.Contains(ip) || used[ip] {
			delete(vips, svc) // reallocated below if present
			changed = true
			continue
		}
		switch {
		case present[svc] && al.GoneSince != nil:
			al.GoneSince = nil
			changed = true
		case !present[svc] && al.GoneSince == nil:
			t := now.UTC()
			al.GoneSince = &t
			changed = true
		case !present[svc] && !now.Before(al.GoneSince.Add(a.cfg.ReleaseAfter)):
			delete(vips, svc)
			changed = true
			continue
		}
		if al.GoneSince != nil {
			if due := al.GoneSince.Add(a.cfg.ReleaseAfter); recheck.IsZero() || due.Before(recheck) {
				recheck = due
			}
		}
		vips[svc] = al
		used[ip] = true
	}
	next := a.first()
	var err error
	for _, svc := range services {
		if _, ok := vips[svc]; ok {
			continue
		}
		ip, ok := a.free(next, used)
		if !ok {
			err = fmt.Errorf("service %q: %w (%s)", svc, ErrExhausted, a.cfg.CIDR)
			break
		}
		used[ip] = true
		next = ip.Next()
		vips[svc] = allocation{IP: ip.String()}
		changed = true
	}
	return changed, recheck, err
}

// first is the first address handed out: the one after the CIDR's base.
func (a *Allocator) first() netip.Addr { return a.cfg.CIDR.Addr().Next() }

// free returns the lowest unused address at or after from, short of the
// CIDR's last address (kept free, as the base is).
func (a *Allocator) free(from netip.Addr, used map[netip.Addr]bool) (netip.Addr, bool) {
	last := lastAddr(a.cfg.CIDR)
	for ip := from; ip.IsValid() && a.cfg.CIDR.Contains(ip) && ip != last; ip = ip.Next() {
		if !used[ip] {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	n := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}
