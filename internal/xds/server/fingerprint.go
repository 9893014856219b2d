package server

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// fingerprint is a content hash of a (part of a) proxy model, or of what
// a model is built from: equal fingerprints give equal resources, so the
// resources built for one are reused for the other.
type fingerprint = proxymodel.Fingerprint

var (
	outboundType = reflect.TypeFor[proxymodel.Outbound]()
	mtlsPtrType  = reflect.TypeFor[*proxymodel.MTLS]()
	// The policy results proxies share (policy.Matcher): hashed once per
	// mesh state by address.
	rulesType   = reflect.TypeFor[policy.Rules]()
	entriesType = reflect.TypeFor[[]policy.Entry]()
	refsType    = reflect.TypeFor[[]policy.Ref]()
	rulePtrType = reflect.TypeFor[*policy.Rule]()
	// Inbound permissions are shared too (the MeshTrafficPermission
	// applier computes them once per snapshot for shared rules).
	permissionsPtrType = reflect.TypeFor[*proxymodel.Permissions]()
	inboundsType       = reflect.TypeFor[[]policy.Inbound]()
	stringMapType      = reflect.TypeFor[map[string]string]()
	policiesMapType    = reflect.TypeFor[map[string]*proxymodel.Matched]()
	// inboundFast is set when policy.Inbound has the fields hashInbounds
	// writes (a field added later turns it off rather than be missed).
	inboundFast = reflect.TypeFor[policy.Inbound]().NumField() == 8
)

// sharedKey identifies a slice or pointer of a model by its address; the
// pointer keeps what it points to alive while the key is held, so the
// address is not reused for other contents during the mesh state.
type sharedKey struct {
	typ reflect.Type
	ptr unsafe.Pointer
	n   int
}

// fingerprintOf hashes every field of a model. Some values are written
// by a hash computed once per mesh state: the endpoints of an outbound
// when they are the index's list for its service (the same backing array,
// as Index.Build gives them), the mTLS model when it is the one mtlsFor
// made for the proxy's services, and the policy rules, entries and refs
// of Proxy.Policies and the inbounds' Permissions (by address: proxies
// selected alike share them). It
// reports false for a model holding a value it cannot hash (the caller
// then builds without sharing). Models must not change once hashed.
func (ms *meshState) fingerprintOf(p *proxymodel.Proxy) (fp fingerprint, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	h := hashers.Get().(*proxymodel.Hasher)
	defer hashers.Put(h)
	h.Reset()
	h.Hook = ms.hashHook
	h.Value(reflect.ValueOf(p).Elem())
	h.Hook = nil
	return h.Sum(), true
}

// hashers reuse the buffers of fingerprintOf's hashers.
var hashers = sync.Pool{New: func() any { return &proxymodel.Hasher{} }}

// The fields of an Outbound hashHook reads by index.
var (
	outboundEndpoints = fieldIndex(outboundType, "Endpoints")
	outboundService   = fieldIndex(outboundType, "Service")
)

func fieldIndex(t reflect.Type, name string) int {
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 {
		panic("server: " + t.String() + " has no field " + name)
	}
	return f.Index[0]
}

func (ms *meshState) hashHook(h *proxymodel.Hasher, v reflect.Value) bool {
	// By kind first: most values are of none of the types below, and
	// comparing types costs more than comparing kinds.
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == outboundType {
			ms.hashOutbound(h, v)
			return true
		}
	case reflect.Pointer:
		if v.IsNil() {
			return false
		}
		switch v.Type() {
		case mtlsPtrType:
			ms.mu.Lock()
			e, ok := ms.mtlsByPtr[(*proxymodel.MTLS)(v.UnsafePointer())]
			ms.mu.Unlock()
			if !ok {
				return false
			}
			h.Raw('t')
			h.Fingerprint(e.fp)
			return true
		case rulePtrType, permissionsPtrType:
			return ms.hashShared(h, v, sharedKey{typ: v.Type(), ptr: v.UnsafePointer()})
		}
	case reflect.Map:
		if v.Type() == policiesMapType && !v.IsNil() {
			ms.hashPolicies(h, v.Interface().(map[string]*proxymodel.Matched))
			return true
		}
	case reflect.Slice:
		n := v.Len()
		if n == 0 {
			return false
		}
		switch t := v.Type(); t {
		case rulesType, entriesType, refsType:
			return ms.hashShared(h, v, sharedKey{typ: t, ptr: v.UnsafePointer(), n: n})
		case inboundsType:
			if inboundFast {
				ms.hashInbounds(h, unsafe.Slice((*policy.Inbound)(v.UnsafePointer()), n))
				return true
			}
		}
	}
	return false
}

// hashOutbound writes an Outbound, its endpoints by the index's hash of
// its service's endpoints when they are the index's list.
func (ms *meshState) hashOutbound(h *proxymodel.Hasher, v reflect.Value) {
	for i := range v.NumField() {
		if i != outboundEndpoints {
			h.Value(v.Field(i))
		}
	}
	eps := v.Field(outboundEndpoints)
	svc := v.Field(outboundService).String()
	shared := ms.ix.Endpoints(svc)
	if eps.Len() == len(shared) && eps.UnsafePointer() == unsafe.Pointer(unsafe.SliceData(shared)) {
		h.Raw('e')
		h.Fingerprint(ms.ix.EndpointsFingerprint(svc))
		return
	}
	h.Value(eps)
}

// hashInbounds writes what the policies of a kind say about a proxy's
// inbounds without reflection: each inbound's own fields, then the rules
// proxies share, by hashShared.
func (ms *meshState) hashInbounds(h *proxymodel.Hasher, ins []policy.Inbound) {
	h.Raw('I')
	h.Uint(uint64(len(ins)))
	for i := range ins {
		in := &ins[i]
		h.Int(int64(in.Index))
		h.String(in.Name)
		h.String(in.Address)
		h.Uint(uint64(in.Port))
		ms.hashTags(h, in.Tags)
		ms.hashSharedSlice(h, refsType, unsafe.Pointer(unsafe.SliceData(in.Policies)), len(in.Policies), in.Policies == nil, func() reflect.Value { return reflect.ValueOf(in.Policies) })
		ms.hashSharedSlice(h, rulesType, unsafe.Pointer(unsafe.SliceData(in.From)), len(in.From), in.From == nil, func() reflect.Value { return reflect.ValueOf(in.From) })
		ms.hashSharedSlice(h, entriesType, unsafe.Pointer(unsafe.SliceData(in.Rules)), len(in.Rules), in.Rules == nil, func() reflect.Value { return reflect.ValueOf(in.Rules) })
	}
}

// hashPolicies writes Proxy.Policies as Value writes a map, without
// reflection over its keys.
func (ms *meshState) hashPolicies(h *proxymodel.Hasher, m map[string]*proxymodel.Matched) {
	var buf [16]string
	kinds := buf[:0]
	for k := range m {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	h.Raw('m')
	h.Uint(uint64(len(kinds)))
	for _, k := range kinds {
		h.String(k)
		h.Value(reflect.ValueOf(m[k]))
	}
}

// hashTags writes an inbound's tags, hashed once per mesh state by
// address: the inbounds of every policy kind's result hold the
// Dataplane's own tags map.
func (ms *meshState) hashTags(h *proxymodel.Hasher, tags map[string]string) {
	if tags == nil {
		h.Raw('n')
		return
	}
	key := sharedKey{typ: stringMapType, ptr: reflect.ValueOf(tags).UnsafePointer()}
	ms.mu.Lock()
	f, ok := ms.shared[key]
	ms.mu.Unlock()
	if !ok {
		var sub proxymodel.Hasher
		sub.StringMap(tags)
		f = sub.Sum()
		ms.mu.Lock()
		ms.shared[key] = f
		ms.mu.Unlock()
	}
	h.Raw('h')
	h.Fingerprint(f)
}

// hashSharedSlice writes a slice of a shared type as the hook does: nil
// and empty ones as Value writes them, others by hashShared.
func (ms *meshState) hashSharedSlice(h *proxymodel.Hasher, t reflect.Type, ptr unsafe.Pointer, n int, isNil bool, value func() reflect.Value) {
	switch {
	case isNil:
		h.Raw('n')
	case n == 0:
		h.Raw('s', 0)
	default:
		key := sharedKey{typ: t, ptr: ptr, n: n}
		ms.mu.Lock()
		f, ok := ms.shared[key]
		ms.mu.Unlock()
		if !ok {
			ms.hashShared(h, value(), key)
			return
		}
		h.Raw('h')
		h.Fingerprint(f)
	}
}

// hashShared writes the hash of v, computed on its first use in the mesh
// state (keyed by its address).
func (ms *meshState) hashShared(h *proxymodel.Hasher, v reflect.Value, key sharedKey) bool {
	ms.mu.Lock()
	f, ok := ms.shared[key]
	ms.mu.Unlock()
	if !ok {
		var sub proxymodel.Hasher
		sub.Value(v)
		f = sub.Sum()
		ms.mu.Lock()
		ms.shared[key] = f
		ms.mu.Unlock()
	}
	h.Raw('h')
	h.Fingerprint(f)
	return true
}

// mtlsEntry is the mTLS model of one set of services, shared by the
// proxies serving them during one recompute.
type mtlsEntry struct {
	m     *proxymodel.MTLS
	renew time.Time
	fp    fingerprint
	// leaf is the validity of the first identity's certificate (nil when
	// it has none or it does not parse), read once per entry rather than
	// on every push (noteCertificate).
	leaf *validity
}

// validity is a certificate's NotBefore and NotAfter.
type validity struct{ notBefore, notAfter time.Time }

// mtlsFor returns the mTLS model of a proxy serving services (nil without
// mTLS), made once per mesh state for each set of services, with when one
// of its certificates is due and its fingerprint.
func (ms *meshState) mtlsFor(services []string) (mtlsEntry, error) {
	if ms.tls == nil {
		return mtlsEntry{}, nil
	}
	key := strings.Join(services, "\x00")
	ms.mu.Lock()
	e, ok := ms.mtls[key]
	ms.mu.Unlock()
	if ok {
		return e, nil
	}
	m, renew, err := ms.tls.Proxy(slices.Clone(services))
	if err != nil {
		return mtlsEntry{}, err
	}
	fp, _ := proxymodel.Hash(m) // bytes and strings: always hashable
	e = mtlsEntry{m: m, renew: renew, fp: fp}
	if m != nil && len(m.Identities) > 0 {
		if c := parseLeaf(m.Identities[0].CertPEM); c != nil {
			e.leaf = &validity{notBefore: c.NotBefore, notAfter: c.NotAfter}
		}
	}
	ms.mu.Lock()
	if prev, ok := ms.mtls[key]; ok {
		e = prev // built concurrently: keep one
	} else {
		ms.mtls[key] = e
		ms.mtlsByPtr[m] = e
	}
	ms.mu.Unlock()
	return e, nil
}
