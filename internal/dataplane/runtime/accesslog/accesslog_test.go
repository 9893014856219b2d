package accesslog

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filealv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	otelalv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	otlpcommonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/accesslog/format"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

func accessLog(t *testing.T, m proto.Message) *accesslogv3.AccessLog {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &accesslogv3.AccessLog{Name: "x", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}
}

func textFile(path, f string) *filealv3.FileAccessLog {
	return &filealv3.FileAccessLog{Path: path, AccessLogFormat: &filealv3.FileAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
		Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: f}}},
	}}}
}

func tcpLog(t *testing.T, addr string, message any) *filealv3.FileAccessLog {
	st, err := structpb.NewStruct(map[string]any{"address": addr, "message": message})
	if err != nil {
		t.Fatal(err)
	}
	return &filealv3.FileAccessLog{Path: TCPPath, AccessLogFormat: &filealv3.FileAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
		Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st},
	}}}
}

func noClusters(string) (string, error) { return "", io.EOF }

func TestFileSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	reg := stats.NewStore()
	l, err := Build([]*accesslogv3.AccessLog{accessLog(t, textFile(path, "%RESPONSE_CODE% %REQ(:PATH)%"))}, noClusters, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		l.Log(&format.Entry{ResponseCode: 200 + i, Path: "/p"})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) == 100 {
			if lines[0] != "200 /p" || lines[99] != "299 /p" {
				t.Fatalf("lines %q ... %q", lines[0], lines[99])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("file has %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A TCP collector that accepts and never reads: Log never blocks, lines
// beyond the queue and the socket buffers are dropped and counted.
func TestTCPSinkNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	reg := stats.NewStore()
	l, err := Build([]*accesslogv3.AccessLog{accessLog(t, tcpLog(t, ln.Addr().String(), strings.Repeat("x", 16<<10)+" %RESPONSE_CODE%"))}, noClusters, reg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const n = 3 * QueueSize
	for range n {
		l.Log(&format.Entry{ResponseCode: 200})
	}
	if d := time.Since(start); d > 30*time.Second { // generous: Log only queues
		t.Fatalf("%d Log calls took %v", n, d)
	}
	if dropped := reg.Counter("access_log.tcp.dropped").Value(); dropped == 0 {
		t.Fatalf("nothing dropped")
	}
}

// The Tcp backend sends each line (plain or JSON) to the collector, and
// reconnects when the collector comes back.
func TestTCPSinkDelivers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	lines := make(chan string, 100)
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
		}
	}
	go serve(ln)
	reg := stats.NewStore()
	l, err := Build([]*accesslogv3.AccessLog{
		accessLog(t, tcpLog(t, addr, "plain %RESPONSE_CODE%")),
		accessLog(t, tcpLog(t, addr, map[string]any{"code": "%RESPONSE_CODE%"})),
	}, noClusters, reg)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(&format.Entry{ResponseCode: 201})
	got := map[string]bool{}
	for range 2 {
		select {
		case s := <-lines:
			got[s] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("got %v", got)
		}
	}
	if !got["plain 201"] || !got[`{"code":201}`] {
		t.Fatalf("got %v", got)
	}
}

func TestOTLPSink(t *testing.T) {
	bodies := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad", 400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cfg := &otelalv3.OpenTelemetryAccessLogConfig{
		HttpService: &corev3.HttpService{HttpUri: &corev3.HttpUri{Uri: "http://" + addr + "/v1/logs", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "c"}}},
		Body:        &otlpcommonv1.AnyValue{Value: &otlpcommonv1.AnyValue_StringValue{StringValue: "%RESPONSE_CODE% %REQ(:PATH)%"}},
		Attributes: &otlpcommonv1.KeyValueList{Values: []*otlpcommonv1.KeyValue{
			{Key: "mesh", Value: &otlpcommonv1.AnyValue{Value: &otlpcommonv1.AnyValue_StringValue{StringValue: "default"}}},
		}},
	}
	l, err := Build([]*accesslogv3.AccessLog{accessLog(t, cfg)}, func(c string) (string, error) {
		if c != "c" {
			t.Fatalf("cluster %q", c)
		}
		return addr, nil
	}, stats.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	l.Log(&format.Entry{ResponseCode: 204, Path: "/x", Start: time.Unix(1, 0)})
	select {
	case b := <-bodies:
		var req struct {
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []struct {
						TimeUnixNano string
						Body         struct{ StringValue string }
						Attributes   []struct {
							Key   string
							Value struct{ StringValue string }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		rec := req.ResourceLogs[0].ScopeLogs[0].LogRecords[0]
		if rec.Body.StringValue != "204 /x" || rec.TimeUnixNano != "1000000000" || rec.Attributes[0].Key != "mesh" || rec.Attributes[0].Value.StringValue != "default" {
			t.Fatalf("record %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing exported")
	}
}

func TestBuildErrors(t *testing.T) {
	bad := []struct {
		al   *accesslogv3.AccessLog
		want string
	}{
		{accessLog(t, textFile("/tmp/x", "%NOPE%")), "unknown command operator %NOPE%"},
		{accessLog(t, &filealv3.FileAccessLog{Path: "/tmp/x"}), "log_format is required"},
		{accessLog(t, tcpLog(t, "", "x")), "json_format {address, message}"},
		{accessLog(t, &corev3.Address{}), "not a supported access logger"},
		{&accesslogv3.AccessLog{Name: "x"}, "typed_config is required"},
		{accessLog(t, &otelalv3.OpenTelemetryAccessLogConfig{}), "http_service.http_uri is required"},
	}
	for _, c := range bad {
		_, err := Build([]*accesslogv3.AccessLog{c.al}, noClusters, stats.NewStore())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "access_log[0]") {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if l, err := Build(nil, noClusters, stats.NewStore()); l != nil || err != nil {
		t.Errorf("empty list: %v %v", l, err)
	}
	var l *Logger
	l.Log(&format.Entry{}) // a nil Logger logs nothing
}
