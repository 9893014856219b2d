package server

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"unsafe"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// fingerprint is a content hash of a (part of a) proxy model: two models
// with the same fingerprint give the same resources, so the resources
// built for one are reused for the other.
type fingerprint [sha256.Size]byte

var (
	outboundType  = reflect.TypeFor[proxymodel.Outbound]()
	endpointsType = reflect.TypeFor[[]proxymodel.Endpoint]()
)

// fingerprintOf hashes every field of p, walking the model by reflection
// so that a field added to the model later is covered without anyone
// remembering to. Outbounds whose endpoints are the index's list of their
// service reuse that list's hash, computed once per index. It reports
// false for a model holding a kind of value it cannot hash (the caller
// then builds without sharing).
func (ms *meshState) fingerprintOf(p *proxymodel.Proxy) (fp fingerprint, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	w := hashWriter{ms: ms, buf: make([]byte, 0, 1024)}
	w.value(reflect.ValueOf(p).Elem())
	return sha256.Sum256(w.buf), true
}

// endpointsHash returns the hash of the index's endpoint list of a
// service, computed once per mesh state.
func (ms *meshState) endpointsHash(svc string) fingerprint {
	ms.mu.Lock()
	h, ok := ms.endpointHashes[svc]
	ms.mu.Unlock()
	if ok {
		return h
	}
	w := hashWriter{buf: make([]byte, 0, 4096)}
	w.value(reflect.ValueOf(ms.ix.Endpoints(svc)))
	h = sha256.Sum256(w.buf)
	ms.mu.Lock()
	ms.endpointHashes[svc] = h
	ms.mu.Unlock()
	return h
}

// hashWriter encodes values unambiguously (types, lengths and nil-ness
// included) into buf, which is hashed at the end.
type hashWriter struct {
	ms  *meshState
	buf []byte
}

func (w *hashWriter) str(s string) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *hashWriter) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			w.buf = append(w.buf, 1)
		} else {
			w.buf = append(w.buf, 0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.buf = binary.AppendVarint(w.buf, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.buf = binary.AppendUvarint(w.buf, v.Uint())
	case reflect.Float32, reflect.Float64:
		w.buf = binary.BigEndian.AppendUint64(w.buf, math.Float64bits(v.Float()))
	case reflect.String:
		w.str(v.String())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.buf = append(w.buf, 'n')
			return
		}
		w.buf = append(w.buf, 'p')
		if v.Kind() == reflect.Interface {
			w.str(v.Elem().Type().String())
		}
		w.value(v.Elem())
	case reflect.Struct:
		if v.Type() == outboundType && w.ms != nil {
			w.outbound(v)
			return
		}
		for i := range v.NumField() {
			w.value(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			w.buf = append(w.buf, 'n')
			return
		}
		w.buf = append(w.buf, 's')
		w.buf = binary.AppendUvarint(w.buf, uint64(v.Len()))
		if v.Type().Elem().Kind() == reflect.Uint8 {
			w.buf = append(w.buf, v.Bytes()...)
			return
		}
		for i := range v.Len() {
			w.value(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			w.value(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			w.buf = append(w.buf, 'n')
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic(fmt.Sprintf("cannot fingerprint a map keyed by %s", v.Type().Key()))
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		w.buf = append(w.buf, 'm')
		w.buf = binary.AppendUvarint(w.buf, uint64(len(keys)))
		for _, k := range keys {
			w.str(k.String())
			w.value(v.MapIndex(k))
		}
	default:
		panic(fmt.Sprintf("cannot fingerprint a %s", v.Type()))
	}
}

// outbound hashes an Outbound; its endpoints, when they are the index's
// list for its service (the same backing array, as Index.Build gives
// them), by that list's precomputed hash.
func (w *hashWriter) outbound(v reflect.Value) {
	t := v.Type()
	for i := range v.NumField() {
		if t.Field(i).Name != "Endpoints" {
			w.value(v.Field(i))
		}
	}
	eps := v.FieldByName("Endpoints")
	if eps.Type() != endpointsType {
		w.value(eps)
		return
	}
	got := eps.Interface().([]proxymodel.Endpoint)
	svc := v.FieldByName("Service").String()
	shared := w.ms.ix.Endpoints(svc)
	if len(got) == len(shared) && unsafe.SliceData(got) == unsafe.SliceData(shared) {
		h := w.ms.endpointsHash(svc)
		w.buf = append(w.buf, 'e')
		w.buf = append(w.buf, h[:]...)
		return
	}
	w.value(eps)
}
