package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// startGRPCBackend runs fortio's gRPC ping server (it echoes the request's
// payload back) on a free loopback port, every other fortio server off.
func (b *bench) startGRPCBackend(ctx context.Context) (string, error) {
	ports, err := freePorts(1)
	if err != nil {
		return "", err
	}
	addr := hostPort(ports[0])
	progress("starting the gRPC ping backend (fortio server) on %s", addr)
	c, err := startChild("fortio server", filepath.Join(b.logDir(), "fortio-server.log"), b.fortioBin, []string{"server",
		"-grpc-port", addr,
		"-http-port", "disabled", "-redirect-port", "disabled",
		"-tcp-port", "disabled", "-udp-port", "disabled",
		"-loglevel", "Warning",
	}, inheritedEnv())
	if err != nil {
		return "", err
	}
	b.children = append(b.children, c)
	return addr, nil
}

// grpcPing sends one gRPC ping with the scenario's payload to addr
// (plaintext HTTP/2) and says whether it was answered.
func (b *bench) grpcPing(ctx context.Context, addr string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.fortioBin, "grpcping",
		"-payload-size", strconv.Itoa(b.o.bodySize), "-loglevel", "Warning", addr).CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("fortio grpcping: %v: %s", err, strings.TrimSpace(lastLine(string(out))))
	}
	return true, ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// sink is the TCP scenario's backend: it reads and counts every byte sent
// to it, on any number of connections.
type sink struct {
	ln    net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startSink starts the TCP sink in this process on a free loopback port.
func (b *bench) startSink() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("starting the TCP sink: %w", err)
	}
	s := &sink{ln: ln, conns: map[net.Conn]struct{}{}}
	b.sink = s
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String(), nil
}

// close stops the sink and its connections.
func (s *sink) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// tcpProbe connects to addr, sends 1 KiB and says whether the sink
// counted it within wait.
func (b *bench) tcpProbe(ctx context.Context, addr string, wait time.Duration) (bool, string) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return false, err.Error()
	}
	defer c.Close()
	before := b.sink.bytes.Load()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b.payload); err != nil {
		return false, err.Error()
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if b.sink.bytes.Load()-before >= int64(len(b.payload)) {
			return true, ""
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false, fmt.Sprintf("the sink got %d of %d bytes", b.sink.bytes.Load()-before, len(b.payload))
}

// tcpChunk is the size of each write of the throughput client.
const tcpChunk = 256 << 10

// tcpThroughput opens one connection to addr and writes to it as fast as
// it can for dur; it returns the bytes the sink received meanwhile and the
// time it took. The sink is used by one path at a time, so its counter
// is this connection's.
func (b *bench) tcpThroughput(ctx context.Context, addr string, dur time.Duration) (int64, float64, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer c.Close()
	buf := make([]byte, tcpChunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	before := b.sink.bytes.Load()
	start := time.Now()
	end := start.Add(dur)
	_ = c.SetWriteDeadline(end)
	for ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return 0, 0, fmt.Errorf("writing to %s: %w", addr, err)
		}
	}
	got := b.sink.bytes.Load() - before
	elapsed := time.Since(start).Seconds()
	if got == 0 {
		return 0, 0, fmt.Errorf("no byte sent to %s reached the backend", addr)
	}
	return got, elapsed, nil
}

// measureTCP runs the single-connection throughput rounds: each path in
// turn (rotating order) for tcpDur / rounds, the proxies' CPU time read
// around each run.
func (b *bench) measureTCP(ctx context.Context) error {
	dur := b.o.tcpDur / time.Duration(b.o.rounds)
	for i := range b.o.rounds {
		for _, t := range b.rotation(i) {
			progress("round %d/%d: %s, one TCP connection, %s", i+1, b.o.rounds, t.label, dur)
			stop, err := b.sampleProxies(t.proxies, tcpKey)
			if err != nil {
				return err
			}
			n, secs, err := b.tcpThroughput(ctx, t.url, dur)
			if serr := stop(); serr != nil && err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t.label, err)
			}
			for _, p := range t.proxies {
				if p.exited() {
					return p.failure("exited during the TCP throughput run")
				}
			}
			t.tcp.requests += n
			t.tcp.seconds += secs
			t.tcp.rounds = append(t.tcp.rounds, round{rate: float64(n) / secs})
		}
	}
	return nil
}

// reportTCP prints the TCP scenario's table.
func (b *bench) reportTCP(w io.Writer) {
	direct := b.targets[0]
	fmt.Fprintf(w, "### Single-connection TCP throughput (%d × %s per path, paths taking turns)\n\n", b.o.rounds, b.o.tcpDur/time.Duration(b.o.rounds))
	fmt.Fprintln(w, "| path | MB/s | ratio to direct | rounds, MB/s | proxies' vCPU (client, server) |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|")
	for _, t := range b.targets {
		var rounds []string
		for _, r := range t.tcp.rounds {
			rounds = append(rounds, fmt.Sprintf("%.0f", r.rate/1e6))
		}
		var cpu []string
		for _, p := range t.proxies {
			cpu = append(cpu, fmt.Sprintf("%.2f", p.cpu[tcpKey]/t.tcp.seconds))
		}
		if len(cpu) == 0 {
			cpu = []string{"–"}
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s |\n", t.label, t.tcp.rate()/1e6, ratio(t.tcp.rate(), direct.tcp.rate()),
			strings.Join(rounds, " / "), strings.Join(cpu, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "One connection writing %d KiB chunks as fast as it can; MB/s = bytes the backend (an in-process sink) received ÷ the time, 1 MB = 10^6 bytes. The client and the sink run in the benchmark's own process, on the same 2 CPUs as the proxies. vCPU = the proxy's CPU seconds ÷ the time.\n\n", tcpChunk>>10)
}
