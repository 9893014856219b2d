package allowlist

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestTrafficFieldsExist: every field the HTTP routing and TCP/TLS files
// allow names a field of the Envoy API (a typo would allow nothing).
func TestTrafficFieldsExist(t *testing.T) {
	for name := range fields {
		msg, field := splitField(name)
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(msg)
		if err != nil {
			continue // a message of a package not linked into this test
		}
		md, ok := d.(protoreflect.MessageDescriptor)
		if !ok || md.Fields().ByName(field) == nil {
			t.Errorf("%s: no such field", name)
		}
	}
}

func splitField(n protoreflect.FullName) (protoreflect.FullName, protoreflect.Name) {
	return n.Parent(), n.Name()
}
