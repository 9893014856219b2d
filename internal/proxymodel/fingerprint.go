package proxymodel

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// Fingerprint is a content hash. Equal fingerprints of model inputs mean
// equal models, so the control plane uses them to skip or share work.
type Fingerprint [sha256.Size]byte

// Hasher encodes values unambiguously (types of interface values,
// lengths and nil-ness included) and hashes the encoding. It walks
// structs by reflection, so a field added to a model type later is
// covered without anyone remembering to.
type Hasher struct {
	buf []byte
	// Hook, when set, is offered every value first; it returns true when
	// it wrote the value itself (a precomputed hash, say).
	Hook func(h *Hasher, v reflect.Value) bool
}

// Sum returns the hash of everything written.
func (h *Hasher) Sum() Fingerprint { return sha256.Sum256(h.buf) }

// Reset forgets everything written.
func (h *Hasher) Reset() { h.buf = h.buf[:0] }

// Raw writes bytes as they are (a tag, a precomputed hash).
func (h *Hasher) Raw(b ...byte) { h.buf = append(h.buf, b...) }

// String writes a length-prefixed string.
func (h *Hasher) String(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

// Uint writes an unsigned integer as Value writes one.
func (h *Hasher) Uint(u uint64) { h.buf = binary.AppendUvarint(h.buf, u) }

// Int writes a signed integer as Value writes one.
func (h *Hasher) Int(i int64) { h.buf = binary.AppendVarint(h.buf, i) }

// Fingerprint writes a precomputed hash.
func (h *Hasher) Fingerprint(f Fingerprint) { h.buf = append(h.buf, f[:]...) }

// Value writes any value made of bools, numbers, strings, pointers,
// interfaces, structs, slices, arrays and maps with string keys; it
// panics on anything else (channels, functions).
func (h *Hasher) Value(v reflect.Value) {
	if h.Hook != nil && v.IsValid() && h.Hook(h, v) {
		return
	}
	switch v.Kind() {
	case reflect.Invalid:
		h.buf = append(h.buf, 'i')
	case reflect.Bool:
		if v.Bool() {
			h.buf = append(h.buf, 1)
		} else {
			h.buf = append(h.buf, 0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		h.buf = binary.AppendVarint(h.buf, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		h.buf = binary.AppendUvarint(h.buf, v.Uint())
	case reflect.Float32, reflect.Float64:
		h.buf = binary.BigEndian.AppendUint64(h.buf, math.Float64bits(v.Float()))
	case reflect.String:
		h.String(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			h.buf = append(h.buf, 'n')
			return
		}
		h.buf = append(h.buf, 'p')
		if v.Kind() == reflect.Interface {
			h.String(v.Elem().Type().String())
		}
		h.Value(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			h.Value(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			h.buf = append(h.buf, 'n')
			return
		}
		h.buf = append(h.buf, 's')
		h.buf = binary.AppendUvarint(h.buf, uint64(v.Len()))
		if v.Type().Elem().Kind() == reflect.Uint8 {
			h.buf = append(h.buf, v.Bytes()...)
			return
		}
		for i := range v.Len() {
			h.Value(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			h.Value(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			h.buf = append(h.buf, 'n')
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic(fmt.Sprintf("proxymodel: cannot hash a map keyed by %s", v.Type().Key()))
		}
		if v.Type() == stringMapType {
			h.StringMap(v.Interface().(map[string]string))
			return
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		h.buf = append(h.buf, 'm')
		h.buf = binary.AppendUvarint(h.buf, uint64(len(keys)))
		for _, k := range keys {
			h.String(k.String())
			h.Value(v.MapIndex(k))
		}
	default:
		panic(fmt.Sprintf("proxymodel: cannot hash a %s", v.Type()))
	}
}

var stringMapType = reflect.TypeFor[map[string]string]()

// StringMap writes a map[string]string (tags, labels) as Value writes it,
// without reflection.
func (h *Hasher) StringMap(m map[string]string) {
	var buf [8]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h.buf = append(h.buf, 'm')
	h.buf = binary.AppendUvarint(h.buf, uint64(len(keys)))
	for _, k := range keys {
		h.String(k)
		h.String(m[k])
	}
}

// Hash returns the fingerprint of v, or false when v holds something a
// Hasher cannot encode.
func Hash(v any) (f Fingerprint, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var h Hasher
	h.Value(reflect.ValueOf(v))
	return h.Sum(), true
}

// inputs memoizes the fingerprints Index.Fingerprint combines.
type inputs struct {
	mu sync.Mutex
	// shared covers the snapshot's mesh, mesh spec and policies, and which
	// appliers run.
	shared    Fingerprint
	sharedOK  bool
	sharedSet bool
	// services holds each service's endpoints and protocol.
	services map[string]Fingerprint
	// vips is what transparent proxies' VIPs depend on (vips.go).
	vips     Fingerprint
	vipsOnce sync.Once
}

// Fingerprint returns a hash of everything Build(name) reads: the
// Dataplane (its name, labels and spec, or its store version when the
// snapshot gives one), the endpoints and protocol of every service its
// outbounds name or route policies send to (routes.go), and what appliers may read (the snapshot's mesh, mesh
// spec and policies; see Applier). Two Builds of a name with equal
// fingerprints give equal models. It reports false when something cannot
// be hashed.
func (ix *Index) Fingerprint(name string) (Fingerprint, bool) {
	dp, ok := ix.named[name]
	if !ok {
		return Fingerprint{}, false
	}
	shared, ok := ix.sharedFingerprint()
	if !ok {
		return Fingerprint{}, false
	}
	var h Hasher
	h.buf = make([]byte, 0, 256)
	h.Fingerprint(shared)
	h.String(dp.Name)
	h.Value(reflect.ValueOf(dp.Labels))
	if dp.Version != "" {
		h.Raw('v')
		h.String(dp.Version)
	} else {
		f, ok := Hash(dp.Spec)
		if !ok {
			return Fingerprint{}, false
		}
		h.Raw('s')
		h.Fingerprint(f)
	}
	if dp.Spec != nil && dp.Spec.Networking != nil {
		for _, out := range dp.Spec.Networking.Outbound {
			svc := out.Tags[mesh.ServiceTag]
			h.String(svc)
			h.Fingerprint(ix.serviceFingerprint(svc))
		}
	}
	if dp.Spec != nil && dp.Spec.Networking != nil && dp.Spec.Networking.TransparentProxying != nil {
		ix.hashVIPInputs(&h) // its VIPs and the outbounds made of them (vips.go)
	}
	// Route policies may send to services the outbounds do not name.
	for _, svc := range ix.routeServices() {
		h.String(svc)
		h.Fingerprint(ix.serviceFingerprint(svc))
	}
	return h.Sum(), true
}

func (ix *Index) sharedFingerprint() (Fingerprint, bool) {
	ix.in.mu.Lock()
	defer ix.in.mu.Unlock()
	if !ix.in.sharedSet {
		var types []string
		for _, a := range ix.appliers {
			types = append(types, reflect.TypeOf(a).String())
		}
		ix.in.shared, ix.in.sharedOK = Hash(struct {
			Mesh     string
			MeshSpec any
			Policies map[string][]PolicyItem
			Appliers []string
		}{ix.snap.Mesh, ix.snap.MeshSpec, ix.snap.Policies, types})
		ix.in.sharedSet = true
	}
	return ix.in.shared, ix.in.sharedOK
}

// serviceFingerprint hashes a service's endpoints and protocol, once per
// index.
func (ix *Index) serviceFingerprint(svc string) Fingerprint {
	ix.in.mu.Lock()
	f, ok := ix.in.services[svc]
	ix.in.mu.Unlock()
	if ok {
		return f
	}
	var h Hasher
	h.String(ix.Protocol(svc))
	h.Value(reflect.ValueOf(ix.endpoints[svc]))
	ix.hashCrossZone(&h, svc)
	f = h.Sum()
	ix.in.mu.Lock()
	if ix.in.services == nil {
		ix.in.services = map[string]Fingerprint{}
	}
	ix.in.services[svc] = f
	ix.in.mu.Unlock()
	return f
}

// EndpointsFingerprint returns the hash of a service's endpoints and
// protocol, as Fingerprint uses it.
func (ix *Index) EndpointsFingerprint(svc string) Fingerprint { return ix.serviceFingerprint(svc) }
