package format

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type hdrs map[string]string

func (h hdrs) Get(name string) (string, bool) { v, ok := h[name]; return v, ok }

func entry() *Entry {
	return &Entry{
		Start:    time.Date(2024, 3, 5, 7, 8, 9, 123456789, time.UTC),
		Duration: 1500 * time.Millisecond,
		Method:   "POST", Path: "/a?b=c", Authority: "backend", Scheme: "http", Protocol: "HTTP/1.1",
		Request:      hdrs{"user-agent": "curl", "x-request-id": "rid", "x-forwarded-for": "1.2.3.4"},
		Response:     hdrs{"content-type": "text/plain", "server": "app"},
		ResponseCode: 503, Flags: "UF",
		UpstreamHost: "10.0.0.2:9000", UpstreamCluster: "backend", UpstreamLocal: "10.0.0.1:4000",
		DownstreamRemote: "127.0.0.1:5555", DownstreamLocal: "127.0.0.1:10001",
		BytesReceived: 12, BytesSent: 345, RequestedServerName: "sni.example",
	}
}

func render(t *testing.T, f string, e *Entry) string {
	t.Helper()
	p, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(%q): %v", f, err)
	}
	return string(p.Append(nil, e))
}

// Every operator trellis-dp implements renders its value.
func TestOperators(t *testing.T) {
	e := entry()
	cases := map[string]string{
		"%START_TIME%":                                      "2024-03-05T07:08:09.123Z",
		"%START_TIME(%Y/%m/%d %H:%M:%S)%":                   "2024/03/05 07:08:09",
		"%START_TIME(%s.%3f)%":                              "1709622489.123",
		"%START_TIME(%E6S %j %b %a %F %T %%)%":              "09.123456 065 Mar Tue 2024-03-05 07:08:09 %",
		"%START_TIME(%9f %6f %f)%":                          "123456789 123456 123456789",
		"%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)%":     "POST /a?b=c backend",
		"%REQ(:SCHEME)%":                                    "http",
		"%REQ(USER-AGENT)%":                                 "curl",
		"%REQ(X-MISSING?X-REQUEST-ID)%":                     "rid",
		"%REQ(X-MISSING)%":                                  "-",
		"%REQ(USER-AGENT):2%":                               "cu",
		"%RESP(SERVER)% %RESP(CONTENT-TYPE):4%":             "app text",
		"%RESPONSE_CODE% %RESPONSE_FLAGS%":                  "503 UF",
		"%DURATION%":                                        "1500",
		"%UPSTREAM_HOST% %UPSTREAM_HOST_NAME_WITHOUT_PORT%": "10.0.0.2:9000 10.0.0.2",
		"%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%":       "backend 10.0.0.1:4000",
		"%BYTES_RECEIVED% %BYTES_SENT%":                     "12 345",
		"%PROTOCOL%":                                        "HTTP/1.1",
		"%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%":               "127.0.0.1:5555 127.0.0.1",
		"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%": "127.0.0.1:5555 127.0.0.1",
		"%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%":                 "127.0.0.1:10001 127.0.0.1",
		"%REQUESTED_SERVER_NAME%":        "sni.example",
		"[%RESPONSE_CODE%] plain text\n": "[503] plain text\n",
	}
	for f, want := range cases {
		if got := render(t, f, e); got != want {
			t.Errorf("%q = %q, want %q", f, got, want)
		}
	}
	if got := render(t, "%HOSTNAME%", e); got == "" || got == "%HOSTNAME%" {
		t.Errorf("HOSTNAME = %q", got)
	}
	// Missing values render as "-" (a TCP entry has no HTTP parts).
	tcp := &Entry{}
	if got := render(t, "%PROTOCOL% %RESPONSE_FLAGS% %UPSTREAM_HOST% %REQ(:METHOD)% %RESP(X)% %START_TIME%", tcp); got != "- - - - - -" {
		t.Errorf("empty entry = %q", got)
	}
	if len(Operators()) != len(simpleOps)+3 {
		t.Errorf("Operators() = %v", Operators())
	}
}

// Kuma's default formats parse.
func TestKumaDefaults(t *testing.T) {
	for _, f := range []string{
		`[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes`,
		`[%START_TIME%] %KUMA_MESH% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-B3-TRACEID?X-DATADOG-TRACEID)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%KUMA_SOURCE_SERVICE%" "%KUMA_DESTINATION_SERVICE%" "%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%" "%UPSTREAM_HOST%"`,
	} {
		v := KumaVars{Mesh: "default", SourceService: "web", DestinationService: "backend", TrafficDirection: "OUTBOUND"}
		s := v.Interpolate(f)
		if strings.Contains(s, "KUMA_") {
			t.Errorf("not interpolated: %q", s)
		}
		got := render(t, s, entry())
		if !strings.Contains(got, "default") || !strings.Contains(got, "web") || !strings.Contains(got, "backend") {
			t.Errorf("rendered %q", got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]error{
		"%NOT_AN_OP%":    ErrUnknownOperator,
		"%KUMA_MESH%":    ErrUnknownOperator, // the control plane substitutes it
		"100%":           ErrSyntax,
		"% %":            ErrSyntax,
		"%REQ%":          ErrSyntax,
		"%REQ()%":        ErrSyntax,
		"%REQ(A?B?C)%":   ErrSyntax,
		"%REQ(A":         ErrSyntax,
		"%REQ(A)":        ErrSyntax,
		"%DURATION(x)%":  ErrSyntax,
		"%DURATION:0%":   ErrSyntax,
		"%DURATION:x%":   ErrSyntax,
		"%RESPONSE_CODE": ErrSyntax,
	}
	for f, want := range cases {
		_, err := Parse(f)
		if !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %v, want %v", f, err, want)
		}
	}
	_, err := Parse("abc %UNKNOWN%")
	if err == nil || !strings.Contains(err.Error(), "at position 4") || !strings.Contains(err.Error(), "%UNKNOWN%") {
		t.Errorf("error %v does not say where and what", err)
	}
}

func TestJSON(t *testing.T) {
	j, err := ParseJSON(map[string]any{
		"status": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%", "missing": "%REQ(X-NOPE)%",
		"text": "code=%RESPONSE_CODE% %REQ(X-NOPE)%", "ua": "%REQ(USER-AGENT)%",
		"nested": map[string]any{"host": "%UPSTREAM_HOST%", "sent": "%BYTES_SENT%"},
		"short":  "%RESPONSE_CODE:2%",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := entry()
	e.Request = hdrs{"user-agent": "a \"quoted\" \\ agent\n\t\x01\x7f é \xff"}
	line := j.Append(nil, e)
	want := `{"flags":"UF","missing":null,"nested":{"host":"10.0.0.2:9000","sent":345},"short":"50","status":503,"text":"code=503 -","ua":"a \"quoted\" \\ agent\n\t\u0001\u007f é \ufffd"}`
	if string(line) != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
	var v map[string]any
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	j.OmitEmpty = true
	if got := string(j.Append(nil, e)); strings.Contains(got, "missing") {
		t.Errorf("omit empty: %s", got)
	}
	if _, err := ParseJSON(map[string]any{"a": 1.0}); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("number value: %v", err)
	}
	if _, err := ParseJSON(map[string]any{"n": map[string]any{"b": "%NOPE%"}}); !errors.Is(err, ErrUnknownOperator) || !strings.Contains(err.Error(), `"n"`) {
		t.Errorf("nested unknown operator: %v", err)
	}
}

func TestInterpolate(t *testing.T) {
	v := KumaVars{Mesh: "m", SourceService: "s", DestinationService: "d", TrafficDirection: "INBOUND", Zone: "z"}
	got := v.Interpolate("%KUMA_MESH% %KUMA_SOURCE_SERVICE% %KUMA_DESTINATION_SERVICE% %KUMA_TRAFFIC_DIRECTION% %KUMA_ZONE% %KUMA_SOURCE_ADDRESS% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%")
	want := "m s d INBOUND z %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
	if got != want {
		t.Errorf("got %q", got)
	}
}

// FuzzParse: any format string parses or fails cleanly, and what parses
// renders without panicking, as text and as JSON.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"%START_TIME(%Y %3f %E9S)%", "%REQ(A?B):3%", "x%%", "%RESP(", "[%RESPONSE_CODE%]", "%START_TIME(%E9S"} {
		f.Add(s)
	}
	e := entry()
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		_ = p.Append(nil, e)
		_ = p.Append(nil, &Entry{})
		j, err := ParseJSON(map[string]any{"k": s})
		if err != nil {
			t.Fatalf("Parse accepted %q, ParseJSON refused it: %v", s, err)
		}
		var v any
		if err := json.Unmarshal(j.Append(nil, e), &v); err != nil {
			t.Fatalf("%q: invalid JSON: %v", s, err)
		}
	})
}
