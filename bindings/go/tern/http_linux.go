package tern

/*
#include <stdlib.h>
#include "posix_shim.h"
*/
import "C"

import (
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime/cgo"
	"runtime/debug"
	"strconv"
	"strings"
	"unsafe"
)

// HTTPRequest is one HTTP/1.1 request that the workers' HTTP server
// (tern_http, libtern-posix) parsed and handed to WorkersOptions.HTTP.
// It is valid during the handler call only, which must answer it: with
// Respond, Error, Stream or WebSocket. A request the handler left
// unanswered gets 404, one whose handler panicked 500 (the panic is
// logged, as net/http does). The server itself answered what it refused
// (malformed requests, bodies over 1 MiB, 501 for unknown methods).
type HTTPRequest struct {
	p        *C.tern_http_request // nil once answered or returned
	worker   int
	set      *C.go_http_set
	header   http.Header
	answered bool
}

// Worker returns the number of the worker thread the request arrived on.
func (r *HTTPRequest) Worker() int { return r.worker }

func (r *HTTPRequest) usable(op string) error {
	if r.p == nil {
		return errOp(C.TERN_ERR_STATE, op, "request answered or handler returned")
	}
	return nil
}

// Method returns "GET", "HEAD", "POST", "OPTIONS" or "DELETE" (the server
// answers other methods 501 itself); "" after the request was answered.
func (r *HTTPRequest) Method() string {
	if r.p == nil {
		return ""
	}
	return C.GoString(C.tern_http_request_method(r.p))
}

// Path returns the decoded path, starting with '/', without the query.
func (r *HTTPRequest) Path() string {
	if r.p == nil {
		return ""
	}
	var n C.size_t
	s := C.tern_http_request_path(r.p, &n)
	return C.GoStringN(s, C.int(n))
}

// Query returns the query parameters, decoded as a form, in the order
// sent.
func (r *HTTPRequest) Query() url.Values {
	v := url.Values{}
	if r.p == nil {
		return v
	}
	for i := 0; ; i++ {
		var name, value *C.char
		var nl, vl C.size_t
		if C.tern_http_request_param_at(r.p, C.size_t(i), &name, &nl, &value, &vl) == 0 {
			return v
		}
		k := C.GoStringN(name, C.int(nl))
		v[k] = append(v[k], C.GoStringN(value, C.int(vl)))
	}
}

// Header returns the value of the first header line name (compared
// without case, trimmed), and whether there was one.
func (r *HTTPRequest) Header(name string) (string, bool) {
	if r.p == nil {
		return "", false
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var v *C.char
	var n C.size_t
	if C.tern_http_request_header(r.p, cn, &v, &n) == 0 {
		return "", false
	}
	return C.GoStringN(v, C.int(n)), true
}

// Body returns a copy of the request's body (nil when empty).
func (r *HTTPRequest) Body() []byte {
	if r.p == nil {
		return nil
	}
	var n C.size_t
	b := C.tern_http_request_body(r.p, &n)
	if n == 0 {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(b), C.int(n))
}

// ResponseHeader returns the header lines to send with the answer, to be
// filled before Respond, Error, Stream or WebSocket. The server writes
// its own (Content-Length, Connection, the stream's Content-Type and
// Cache-Control) before them.
func (r *HTTPRequest) ResponseHeader() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

// headerLines renders the response header as "Name: value\r\n" lines in
// C memory (nil for none); the caller frees them. A value with CR or LF
// is refused with ErrInvalid.
func (r *HTTPRequest) headerLines(op string) (*C.char, error) {
	if len(r.header) == 0 {
		return nil, nil
	}
	var b strings.Builder
	for k, vs := range r.header {
		for _, v := range vs {
			if strings.ContainsAny(k+v, "\r\n\x00") {
				return nil, errOp(C.TERN_ERR_INVALID, op, "CR, LF or NUL in a header")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	return C.CString(b.String()), nil
}

// Respond answers the request with status (200..599), contentType (""
// for none), the ResponseHeader lines and body (copied; left out for
// HEAD). The connection stays open for the next request unless the
// client asked otherwise. Errors: ErrInvalid (a status out of range, a
// bad header), ErrState (answered already), ErrNoMem.
func (r *HTTPRequest) Respond(status int, contentType string, body []byte) error {
	if err := r.usable("respond"); err != nil {
		return err
	}
	if status < 200 || status > 599 {
		return errOp(C.TERN_ERR_INVALID, "respond", "status out of range")
	}
	h, err := r.headerLines("respond")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(h))
	var ct *C.char
	if contentType != "" {
		ct = C.CString(contentType)
		defer C.free(unsafe.Pointer(ct))
	}
	rc := C.tern_http_respond(r.p, C.int(status), ct, h, bytesPtr(body), C.size_t(len(body)))
	return r.done(rc, "respond")
}

// Error answers the request with status and the JSON body
// {"error":"<msg>"} (msg "": the status's reason phrase), with
// Cache-Control: no-store and the ResponseHeader lines. Errors as
// Respond.
func (r *HTTPRequest) Error(status int, msg string) error {
	if err := r.usable("respond error"); err != nil {
		return err
	}
	if status < 200 || status > 599 {
		return errOp(C.TERN_ERR_INVALID, "respond error", "status out of range")
	}
	h, err := r.headerLines("respond error")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(h))
	var cm *C.char
	if msg != "" {
		cm = C.CString(msg)
		defer C.free(unsafe.Pointer(cm))
	}
	return r.done(C.tern_http_respond_error(r.p, C.int(status), h, cm), "respond error")
}

func (r *HTTPRequest) done(rc C.int, op string) error {
	if rc == 0 || rc == C.TERN_ERR_PROTO {
		r.p = nil
		r.answered = true
	}
	return newError(rc, op)
}

// Stream turns the request's connection into a one-way stream of the
// session o.Key on the worker that owns it (the request is moved there
// when it arrived elsewhere): o.Framing FramingSSE, FramingNDJSON or
// FramingPoll. The server writes 200, the framing's Content-Type,
// Cache-Control: no-store and the ResponseHeader lines, then the hub's
// messages as the receiver can take them; the stream ends when the peer
// closes (a poll after its answer). The host authenticates the request
// first (TokenCheck). Errors: ErrInvalid (no key, a framing that is no
// stream, a HEAD request, a bad header), ErrTooLarge (key), ErrLimit,
// ErrNoMem: the request is then still to be answered. A stream that the
// owning worker cannot open there is answered 503 there.
func (r *HTTPRequest) Stream(o StreamOptions) error {
	if o.Framing != FramingSSE && o.Framing != FramingNDJSON && o.Framing != FramingPoll {
		return errOp(C.TERN_ERR_INVALID, "stream", "not a stream framing")
	}
	return r.stream(0, o, "stream")
}

// WebSocket upgrades the request's connection to a WebSocket connection
// of the session o.Key, on the worker that owns it (tern-web(7)): the
// client's subprotocol "tern.json" binds it to o.Key (with its resume),
// "tern.bin" speaks the binary framing (its HELLO names the session: give
// o.Key the same name, as the connection cannot move to another worker
// once upgraded; a HELLO for a session of another worker is refused with
// GOAWAY REJECTED, and WorkersOptions.Authorize answers the others); a
// client that offers neither gets o.Framing (FramingWSJSON or
// FramingWSBin; 0 refuses it). A request that is no valid upgrade is answered 400 or 426
// by the server, and WebSocket returns an error matching ErrProto. Other
// errors as Stream.
func (r *HTTPRequest) WebSocket(o StreamOptions) error {
	if o.Framing != 0 && o.Framing != FramingWSBin && o.Framing != FramingWSJSON {
		return errOp(C.TERN_ERR_INVALID, "websocket", "not a WebSocket framing")
	}
	return r.stream(1, o, "websocket")
}

func (r *HTTPRequest) stream(ws int, o StreamOptions, op string) error {
	if err := r.usable(op); err != nil {
		return err
	}
	h, err := r.headerLines(op)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(h))
	key := []byte(o.Key)
	hold := C.uint64_t(C.UINT64_MAX)
	if o.ShortPoll {
		hold = 0
	} else if o.PollHold > 0 {
		hold = C.uint64_t(durToC(o.PollHold))
	}
	rc := C.go_http_stream(r.set, C.uint32_t(r.worker), r.p, C.int(ws), C.int(o.Framing),
		bufPtr(key), C.size_t(len(key)), C.uint64_t(o.ResumeEpoch), C.uint64_t(o.ResumeSeq),
		C.uint64_t(durToC(o.Heartbeat)), C.uint64_t(durToC(o.Retry)), hold, h)
	return r.done(rc, op)
}

// ListenHTTP listens for HTTP/1.1 on TCP host ("" is 127.0.0.1) and port
// (0: a free one) on every worker, served by WorkersOptions.HTTP, and
// returns the address bound. Call it before Start. Errors: ErrState
// (running, or no HTTP handler), ErrInvalid, ErrClosed, ErrStore.
func (w *Workers) ListenHTTP(host string, port int) (*net.TCPAddr, error) {
	if port < 0 || port > 65535 {
		return nil, errOp(C.TERN_ERR_INVALID, "listen http", "port out of range")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, errOp(C.TERN_ERR_INVALID, "listen http", "not a numeric address: "+host)
	}
	w.ctl.Lock()
	defer w.ctl.Unlock()
	if w.p == nil {
		return nil, errOp(C.TERN_ERR_CLOSED, "listen http", "workers closed")
	}
	if w.http == nil {
		return nil, errOp(C.TERN_ERR_STATE, "listen http", "no HTTP handler in the options")
	}
	if w.running {
		return nil, errOp(C.TERN_ERR_STATE, "listen http", "running")
	}
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var bound C.uint16_t
	if rc := C.go_http_listen(w.http, ch, C.uint16_t(port), &bound); rc != 0 {
		return nil, newError(rc, "listen http "+net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return &net.TCPAddr{IP: ip, Port: int(bound)}, nil
}

//export goTernHTTP
func goTernHTTP(h C.uintptr_t, set *C.go_http_set, worker C.uint32_t, p *C.tern_http_request) {
	cb := cgo.Handle(h).Value().(*workersCallbacks)
	r := &HTTPRequest{p: p, worker: int(worker), set: set}
	defer func() {
		v := recover()
		if v != nil { // as net/http does: log, answer 500, go on
			log.Printf("tern: panic serving %s %s: %v\n%s", r.Method(), r.Path(), v, debug.Stack())
		}
		if r.p != nil {
			status := 404
			if v != nil {
				status = 500
			}
			r.header = nil
			C.tern_http_respond_error(r.p, C.int(status), nil, nil)
			r.p = nil
		}
	}()
	cb.http(r)
}
