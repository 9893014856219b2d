package server

import (
	"reflect"
	"testing"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// dataplaneDocs are node metadata a proxy may send.
var dataplaneDocs = map[string]string{
	"plain": `{"type":"Dataplane","mesh":"default","name":"web-1","labels":{"team":"a"},
  "networking":{"address":"10.0.0.1","inbound":[{"port":8080,"servicePort":18080,"tags":{"kuma.io/service":"web","kuma.io/protocol":"http"}}],
  "outbound":[{"port":20001,"tags":{"kuma.io/service":"api"}}]}}`,
	"no name or mesh": `{"networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	"float port":      `{"name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8080.0,"tags":{"kuma.io/service":"web"}}]}}`,
	"exponent port":   `{"name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8e3,"tags":{"kuma.io/service":"web"}}]}}`,
	"duplicate key":   `{"name":"web-1","name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	"other name":      `{"name":"web-2","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	"numeric name":    `{"name":7,"mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	"other type":      `{"type":"Mesh","name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	"invalid":         `{"name":"web-1","mesh":"default","networking":{"address":"","inbound":[{"port":0}]}}`,
	"unknown field":   `{"name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","bogus":1,"inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	"yaml":            "name: web-1\nmesh: default\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: web\n",
	"trailing data":   `{"name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}} {}`,
	"big number":      `{"name":"web-1","mesh":"default","networking":{"address":"10.0.0.1","inbound":[{"port":99999999999999999999,"tags":{"kuma.io/service":"web"}}]}}`,
}

// decodeDataplane gives what resource.DecodeForPath gives, resource or
// error, whether or not it takes its JSON shortcut.
func TestDecodeDataplaneIsDecodeForPath(t *testing.T) {
	d, _ := kinds.Registry().ByKind(kinds.Dataplane)

	for name, doc := range dataplaneDocs {
		t.Run(name, func(t *testing.T) { sameAsDecodeForPath(t, d, []byte(doc)) })
	}
	if _, ok := plainJSONObject([]byte(dataplaneDocs["plain"])); !ok {
		t.Error("a plain JSON Dataplane does not take the shortcut")
	}
}

func sameAsDecodeForPath(t *testing.T, d *resource.Descriptor, doc []byte) {
	t.Helper()
	want, wantErr := resource.DecodeForPath(d, doc, "default", "web-1")
	got, gotErr := decodeDataplane(d, doc, "default", "web-1")
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("error %v, DecodeForPath gives %v", gotErr, wantErr)
	}
	if wantErr == nil && (!reflect.DeepEqual(got.Spec, want.Spec) || !reflect.DeepEqual(got.Meta, want.Meta)) {
		t.Fatalf("got %+v %+v, DecodeForPath gives %+v %+v", got.Meta, got.Spec, want.Meta, want.Spec)
	}
}

func FuzzDecodeDataplane(f *testing.F) {
	for _, doc := range dataplaneDocs {
		f.Add([]byte(doc))
	}
	d, _ := kinds.Registry().ByKind(kinds.Dataplane)
	f.Fuzz(func(t *testing.T, doc []byte) { sameAsDecodeForPath(t, d, doc) })
}
