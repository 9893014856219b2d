package accesslog

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Sink limits.
const (
	// QueueSize is how many lines a sink holds before it drops them.
	QueueSize    = 4096
	writeTimeout = 2 * time.Second
	dialTimeout  = 2 * time.Second
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// sink takes rendered lines without blocking.
type sink interface {
	// offer queues a line; false when the queue is full (dropped).
	offer(line []byte) bool
	// lineBased: each entry is one line ending in '\n'.
	lineBased() bool
}

// queue is a bounded line queue drained by a writer goroutine.
type queue struct {
	ch chan []byte
}

func (q *queue) offer(line []byte) bool {
	select {
	case q.ch <- line:
		return true
	default:
		return false
	}
}

func (q *queue) lineBased() bool { return true }

// Sinks are shared by every access log with the same destination, and
// live as long as the process (a proxy has a few).
var (
	sinksMu sync.Mutex
	sinks   = map[string]sink{}
)

func sharedSink(key string, start func() sink) sink {
	sinksMu.Lock()
	defer sinksMu.Unlock()
	if s, ok := sinks[key]; ok {
		return s
	}
	s := start()
	sinks[key] = s
	return s
}

// fileSink appends lines to a file (opened, and reopened after an error,
// with back-off).
func fileSink(path string) sink {
	return sharedSink("file:"+path, func() sink {
		q := &queue{ch: make(chan []byte, QueueSize)}
		go writeLoop(q.ch, func() (io.WriteCloser, error) {
			return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		}, "file", path)
		return q
	})
}

// tcpSink sends lines to a TCP collector (connected, and reconnected after
// an error, with back-off). A write that does not finish within
// writeTimeout (a collector that stopped reading) drops the connection.
func tcpSink(addr string) sink {
	return sharedSink("tcp:"+addr, func() sink {
		q := &queue{ch: make(chan []byte, QueueSize)}
		go writeLoop(q.ch, func() (io.WriteCloser, error) {
			c, err := net.DialTimeout("tcp", addr, dialTimeout)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{c}, nil
		}, "tcp", addr)
		return q
	})
}

// deadlineConn bounds each write.
type deadlineConn struct{ net.Conn }

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(p)
}

// writeLoop writes the queued lines to what open returns, buffered and
// flushed whenever the queue is empty. After an error it closes the
// writer and opens it again after a back-off, during which lines queue
// (and, once the queue is full, are dropped).
func writeLoop(ch <-chan []byte, open func() (io.WriteCloser, error), kind, dest string) {
	var w io.WriteCloser
	var bw *bufio.Writer
	backoff := time.Duration(0)
	fail := func(err error) {
		slog.Debug("access log sink failed", "sink", kind, "destination", dest, "error", err)
		if w != nil {
			_ = w.Close()
			w = nil
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		time.Sleep(backoff)
	}
	for line := range ch {
		for w == nil {
			var err error
			if w, err = open(); err != nil {
				w = nil
				fail(err)
				continue
			}
			bw = bufio.NewWriterSize(w, 32<<10)
		}
		_, err := bw.Write(line)
		if err == nil && len(ch) == 0 {
			err = bw.Flush()
		}
		if err != nil {
			fail(err) // the buffered lines are lost
			continue
		}
		backoff = 0
	}
}
