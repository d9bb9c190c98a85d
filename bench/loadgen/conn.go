package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// requestTimeout bounds one request and its answer.
const requestTimeout = 60 * time.Second

// Client sends HTTP/1.1 requests to one server over keep-alive connections it holds, one per
// concurrent request. It writes each request in one write and reads the answer with a
// minimal parser (status, Content-Length or chunked body, Connection: close): a fraction of
// net/http's CPU per request, which on a small machine is CPU left to the server measured.
type Client struct {
	addr string
	idle chan *conn
}

// NewClient returns a client of the server at addr (host:port) keeping up to conns idle
// connections.
func NewClient(addr string, conns int) *Client {
	return &Client{addr: addr, idle: make(chan *conn, conns)}
}

// Close closes the idle connections.
func (c *Client) Close() {
	for {
		select {
		case cn := <-c.idle:
			cn.nc.Close()
		default:
			return
		}
	}
}

type conn struct {
	nc  net.Conn
	r   *bufio.Reader
	req []byte
}

// Do sends a POST of body to path with the given header lines ("Name: value\r\n" each) and
// returns the answer's status and body.
func (c *Client) Do(path string, headers []byte, body []byte) (int, []byte, error) {
	var cn *conn
	select {
	case cn = <-c.idle:
	default:
		nc, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		cn = &conn{nc: nc, r: bufio.NewReaderSize(nc, 16<<10)}
	}
	status, resp, keep, err := cn.roundTrip(c.addr, path, headers, body)
	if err != nil || !keep {
		cn.nc.Close()
		return status, resp, err
	}
	select {
	case c.idle <- cn:
	default:
		cn.nc.Close()
	}
	return status, resp, nil
}

func (cn *conn) roundTrip(host, path string, headers, body []byte) (status int, resp []byte, keep bool, err error) {
	req := cn.req[:0]
	req = append(req, "POST "...)
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\n"...)
	req = append(req, headers...)
	req = append(req, "Content-Length: "...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)
	cn.req = req
	_ = cn.nc.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := cn.nc.Write(req); err != nil {
		return 0, nil, false, err
	}
	return cn.readResponse()
}

var errMalformed = errors.New("malformed HTTP response")

func (cn *conn) readResponse() (status int, body []byte, keep bool, err error) {
	line, err := cn.line()
	if err != nil {
		return 0, nil, false, err
	}
	// HTTP/1.1 202 Accepted
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	length, chunked := -1, false
	keep = line[7] == '1'
	for {
		h, err := cn.line()
		if err != nil {
			return status, nil, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil {
				return status, nil, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		body, err = cn.chunked()
	case length >= 0:
		body = make([]byte, length)
		_, err = io.ReadFull(cn.r, body)
	default:
		body, err = io.ReadAll(cn.r)
		keep = false
	}
	return status, body, keep && err == nil, err
}

// line reads one line without its CRLF.
func (cn *conn) line() ([]byte, error) {
	l, err := cn.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

func (cn *conn) chunked() ([]byte, error) {
	var body []byte
	for {
		l, err := cn.line()
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(l)), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk size %q", errMalformed, l)
		}
		if size == 0 {
			// Trailers, then the empty line.
			for {
				t, err := cn.line()
				if err != nil {
					return nil, err
				}
				if len(t) == 0 {
					return body, nil
				}
			}
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(cn.r, body[start:]); err != nil {
			return nil, err
		}
		if _, err := cn.line(); err != nil {
			return nil, err
		}
	}
}
