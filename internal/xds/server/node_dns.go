package server

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"
)

// dnsPortOf reads the MetaDNSPort node metadata: a port as a string (as
// kuma-dp sends it) or a number; absent, empty or 0 means no DNS server.
func dnsPortOf(v *structpb.Value) (uint32, error) {
	var n float64
	switch k := v.GetKind().(type) {
	case nil:
		return 0, nil
	case *structpb.Value_StringValue:
		if k.StringValue == "" {
			return 0, nil
		}
		u, err := strconv.ParseUint(k.StringValue, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("metadata %s %q is not a port number", MetaDNSPort, k.StringValue)
		}
		return uint32(u), nil
	case *structpb.Value_NumberValue:
		n = k.NumberValue
	default:
		return 0, fmt.Errorf("metadata %s must be a port number", MetaDNSPort)
	}
	if n < 0 || n > 65535 || n != math.Trunc(n) {
		return 0, fmt.Errorf("metadata %s %v is not a port number", MetaDNSPort, n)
	}
	return uint32(n), nil
}
