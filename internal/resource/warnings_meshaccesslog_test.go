package resource

import (
	"strings"
	"testing"
)

func TestMeshAccessLogWarnings(t *testing.T) {
	spec := `{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"backends":[
		{"type":"File","file":{"path":"/tmp/a.log","format":{"type":"Plain","plain":"%START_TIME% %KUMA_MESH% %NO_SUCH_OPERATOR%"}}},
		{"type":"Tcp","tcp":{"address":"127.0.0.1:5000","format":{"type":"Json","json":[{"key":"a","value":"%RESPONSE_CODE%"},{"key":"b","value":"%ALSO_UNKNOWN(x)%"}]}}}]}}]}`
	got := meshAccessLogWarnings([]byte(spec))
	if len(got) != 2 {
		t.Fatalf("warnings = %q, want 2", got)
	}
	if !strings.HasPrefix(got[0], "spec.to[0].default.backends[0].file.format.plain: ") || !strings.Contains(got[0], "NO_SUCH_OPERATOR") {
		t.Errorf("first warning = %q", got[0])
	}
	if !strings.HasPrefix(got[1], "spec.to[0].default.backends[1].tcp.format.json[1].value: ") || !strings.Contains(got[1], "ALSO_UNKNOWN") {
		t.Errorf("second warning = %q", got[1])
	}
	ok := `{"to":[{"default":{"backends":[{"type":"File","file":{"path":"/x","format":{"type":"Plain","plain":"[%START_TIME%] %KUMA_SOURCE_SERVICE% %REQ(:PATH)% %RESPONSE_CODE%"}}}]}}]}`
	if got := meshAccessLogWarnings([]byte(ok)); len(got) != 0 {
		t.Errorf("warnings for known operators = %q", got)
	}
}
