package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// copyErr tells which side of a body copy failed: the source (a read, or
// a body that does not parse) or the destination (a write).
type copyErr struct {
	read, write error
}

func (e copyErr) failed() bool { return e.read != nil || e.write != nil }

func readFailed(err error) copyErr {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return copyErr{read: err}
}

// copyLength copies exactly n bytes from src to dst. Small amounts go
// through dst's buffer (for one write with the head before them); large
// ones are written to dw (what dst writes to) directly in 32 KiB pieces.
// dst is not flushed at the end.
func copyLength(dst *bufio.Writer, dw io.Writer, src *bufio.Reader, n int64) copyErr {
	for n > 0 {
		if src.Buffered() > 0 || n <= int64(dst.Available()) {
			if dst.Available() == 0 {
				if err := dst.Flush(); err != nil {
					return copyErr{write: err}
				}
			}
			p := dst.AvailableBuffer()[:min(n, int64(dst.Available()))]
			k, err := src.Read(p)
			_, _ = dst.Write(p[:k]) // fits: it is dst's free space
			n -= int64(k)
			if err != nil && n > 0 {
				return readFailed(err)
			}
			continue
		}
		if err := dst.Flush(); err != nil {
			return copyErr{write: err}
		}
		bp := copyBufs.Get().(*[]byte)
		buf := *bp
		k, err := src.Read(buf[:min(n, int64(len(buf)))])
		var werr error
		if k > 0 {
			_, werr = dw.Write(buf[:k])
		}
		copyBufs.Put(bp)
		n -= int64(k)
		switch {
		case werr != nil:
			return copyErr{write: werr}
		case err != nil && n > 0:
			return readFailed(err)
		}
	}
	return copyErr{}
}

// copyChunked copies a chunked body from src to dst, chunk by chunk,
// flushing after each one so that a stream reaches its reader without
// delay, then the trailer section. Chunk extensions are dropped.
func copyChunked(dst *bufio.Writer, dw io.Writer, src *bufio.Reader) copyErr {
	for {
		size, err := readChunkSize(src)
		if err != nil {
			return readFailed(err)
		}
		if size == 0 {
			break
		}
		if ce := writeChunkHeader(dst, size); ce.failed() {
			return ce
		}
		if ce := copyLength(dst, dw, src, size); ce.failed() {
			return ce
		}
		if err := readCRLF(src); err != nil {
			return readFailed(err)
		}
		if _, err := dst.WriteString("\r\n"); err != nil {
			return copyErr{write: err}
		}
		if err := dst.Flush(); err != nil {
			return copyErr{write: err}
		}
	}
	return copyTrailers(dst, src)
}

// copyToClose copies src to dst until src ends, as chunks (the downstream
// connection stays open for the next request), flushing each.
func copyToClose(dst *bufio.Writer, src *bufio.Reader) copyErr {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if ce := writeChunkHeader(dst, int64(k)); ce.failed() {
				return ce
			}
			_, _ = dst.Write(buf[:k])
			_, _ = dst.WriteString("\r\n")
			if err := dst.Flush(); err != nil {
				return copyErr{write: err}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return copyErr{read: err}
		}
	}
	if _, err := dst.WriteString("0\r\n\r\n"); err != nil {
		return copyErr{write: err}
	}
	return copyErr{}
}

func writeChunkHeader(dst *bufio.Writer, size int64) copyErr {
	b := strconv.AppendInt(dst.AvailableBuffer(), size, 16)
	b = append(b, '\r', '\n')
	if _, err := dst.Write(b); err != nil {
		return copyErr{write: err}
	}
	return copyErr{}
}

// readChunkSize reads a chunk-size line: hex digits, then optional
// extensions or trailing whitespace (no whitespace before ";").
func readChunkSize(src *bufio.Reader) (int64, error) {
	line, err := src.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return 0, errMalformed
	case err != nil:
		return 0, err
	case len(line) < 3 || bytes.IndexByte(line, '\r') != len(line)-2:
		// CRLF ends the line and no CR comes before it (as net/http).
		return 0, errMalformed
	}
	line = line[:len(line)-2]
	var n int64
	digits := 0
	for i, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		case c == ';':
			if digits == 0 {
				return 0, errMalformed
			}
			return n, nil
		case c == ' ' || c == '\t':
			// Trailing whitespace only, as net/http reads it: "3 ;x"
			// and "0 0" are refused, so both hops agree on the framing.
			if digits == 0 || len(bytes.Trim(line[i:], " \t")) != 0 {
				return 0, errMalformed
			}
			return n, nil
		default:
			return 0, errMalformed
		}
		digits++
		if digits > 15 {
			return 0, errMalformed
		}
		n = n<<4 | int64(d)
	}
	if digits == 0 {
		return 0, errMalformed
	}
	return n, nil
}

func readCRLF(src *bufio.Reader) error {
	b, err := src.Peek(2)
	if err != nil {
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errMalformed
	}
	_, _ = src.Discard(2)
	return nil
}

// copyTrailers copies the trailer section after the last chunk and the
// empty line that ends the body, and flushes.
func copyTrailers(dst *bufio.Writer, src *bufio.Reader) copyErr {
	if _, err := dst.WriteString("0\r\n"); err != nil {
		return copyErr{write: err}
	}
	total := 0
	for {
		line, err := src.ReadSlice('\n')
		total += len(line)
		switch {
		case err == bufio.ErrBufferFull || total > maxTrailers:
			return copyErr{read: errMalformed}
		case err != nil:
			return readFailed(err)
		case len(line) < 2 || line[len(line)-2] != '\r':
			return copyErr{read: errMalformed}
		}
		if len(line) > 2 {
			if _, _, ok := parseField(line[:len(line)-2]); !ok {
				return copyErr{read: errMalformed}
			}
		}
		if _, err := dst.Write(line); err != nil {
			return copyErr{write: err}
		}
		if len(line) == 2 {
			break
		}
	}
	if err := dst.Flush(); err != nil {
		return copyErr{write: err}
	}
	return copyErr{}
}
