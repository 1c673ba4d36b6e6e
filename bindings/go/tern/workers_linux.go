package tern

/*
#cgo linux pkg-config: libtern-posix
#include <stdlib.h>
#include "posix_shim.h"
*/
import "C"

import (
	"net"
	"runtime"
	"runtime/cgo"
	"strconv"
	"sync"
	"unsafe"
)

// WorkersOptions configures NewWorkers.
type WorkersOptions struct {
	// Threads is the number of worker threads, each running its own hub
	// on its own epoll loop; sessions are sharded over them by ShardOf.
	// 0 means 1; at most 1024.
	Threads int
	// Hub holds the settings of every worker's hub (nil: DefaultOptions()).
	// Its Clock is not used (the workers read CLOCK_MONOTONIC) and its
	// HelloAccept is replaced by Authorize.
	Hub *Options
	// Authorize, when not nil, decides whether a receiver's HELLO for
	// session with token (empty when it sent none) is accepted; a refused
	// one gets GOAWAY REJECTED. A server of subscriber tokens checks them
	// here with TokenCheck. nil accepts every HELLO. It is called on the
	// worker thread that owns the session, concurrently for sessions of
	// different workers; a panic in it refuses the HELLO.
	Authorize func(session string, token []byte) bool
	// Done, when not nil, gets the result of each publish when its worker
	// took it from its inbox: the Message's Cookie and nil, or the error
	// Hub.Publish would have returned (ErrFull, ErrDuplicate, ...). It is
	// called on the worker's thread (worker is its number), concurrently
	// for different workers.
	Done func(worker int, cookie uint64, err error)
	// HTTP, when not nil, serves HTTP/1.1 on every worker (ListenHTTP):
	// it gets each valid request on the worker thread it arrived on,
	// concurrently for different workers, and answers it before it
	// returns (HTTPRequest).
	HTTP func(r *HTTPRequest)
}

// Workers runs hubs on threads of libtern-posix (tern_workers): N worker
// threads, each an epoll loop serving one hub, with receivers connecting
// over TCP in the binary framing of tern-protocol(7) (a Client with a
// net.Dialer, or any client of the protocol). A receiver's connection is
// moved, once its HELLO names the session, to the worker that owns the
// session, where the session's messages are published; acknowledgements,
// heartbeats, redelivery and expiry all run on the workers' threads.
//
// Create Workers with NewWorkers, Listen, then Start; Publish from any
// goroutine; Stop and Close when done. The Authorize and Done callbacks
// run on the worker threads and must not call Listen, Start, Stop or
// Close (Publish is fine). A Workers that becomes unreachable is closed by
// a finalizer, as a safety net only.
type Workers struct {
	ctl sync.Mutex   // Listen, Start, Stop, Close
	mu  sync.RWMutex // the pointer: Publish reads it, Close clears it
	p   *C.tern_workers
	cbs *C.go_workers_cb // the callbacks' C side
	cb  cgo.Handle
	n   int

	http    *C.go_http_set // the HTTP servers, nil without a handler
	running bool           // between Start and Stop
}

// workersCallbacks is what the C callbacks reach through the handle; it
// holds no pointer to the Workers, so that its finalizer can run.
type workersCallbacks struct {
	authorize func(string, []byte) bool
	done      func(int, uint64, error)
	http      func(*HTTPRequest)
}

// NewWorkers makes the workers, not yet listening or running. Errors:
// ErrInvalid (Threads out of range, options the library refuses),
// ErrNoMem, ErrStore (an epoll loop could not be made).
func NewWorkers(o WorkersOptions) (*Workers, error) {
	if o.Threads < 0 || o.Threads > 1024 {
		return nil, errOp(C.TERN_ERR_INVALID, "new workers", "threads out of range")
	}
	n := o.Threads
	if n == 0 {
		n = 1
	}
	ho := o.Hub
	if ho == nil {
		d := DefaultOptions()
		ho = &d
	}
	set, err := ho.toC()
	if err != nil {
		return nil, err
	}
	set.hello_accept = cbool(o.Authorize != nil)
	// The settings and options live in C memory during the call: the
	// options point at the settings, and cgo forbids Go memory holding
	// pointers to Go memory.
	cs := (*C.tern_settings)(C.malloc(C.size_t(unsafe.Sizeof(set))))
	co := (*C.tern_workers_options)(C.malloc(C.size_t(unsafe.Sizeof(C.tern_workers_options{}))))
	if cs == nil || co == nil {
		C.free(unsafe.Pointer(cs))
		C.free(unsafe.Pointer(co))
		return nil, errOp(C.TERN_ERR_NOMEM, "new workers", "")
	}
	defer C.free(unsafe.Pointer(cs))
	defer C.free(unsafe.Pointer(co))
	*cs = set
	C.tern_workers_options_default_versioned(C.TERN_WORKERS_OPTIONS_VERSION, co)
	co.nthreads = C.uint32_t(n)
	co.settings = cs
	hd := cgo.NewHandle(&workersCallbacks{authorize: o.Authorize, done: o.Done, http: o.HTTP})
	var p *C.tern_workers
	var cbs *C.go_workers_cb
	rc := C.go_workers_new(&p, &cbs, co, C.uintptr_t(hd), C.int(cbool(o.Authorize != nil)),
		C.int(cbool(o.Done != nil)))
	if rc != 0 {
		hd.Delete()
		return nil, newError(rc, "new workers")
	}
	w := &Workers{p: p, cbs: cbs, cb: hd, n: n}
	if o.HTTP != nil {
		if rc := C.go_http_new(&w.http, p, C.uintptr_t(hd)); rc != 0 {
			C.go_workers_del(p, cbs)
			hd.Delete()
			return nil, newError(rc, "new workers")
		}
	}
	runtime.SetFinalizer(w, (*Workers).Close)
	return w, nil
}

// Threads returns the number of workers.
func (w *Workers) Threads() int { return w.n }

// Listen listens for receivers on TCP host (a numeric IPv4 or IPv6
// address; "" is 127.0.0.1) and port (0: a free one) on every worker
// (SO_REUSEPORT: the kernel spreads connections over them), and returns
// the address bound. Call it before Start; it may be called more than
// once. Errors: ErrInvalid (a host that is no numeric address, a port out
// of range), ErrState (running), ErrClosed, ErrStore (socket, bind or
// listen failed).
func (w *Workers) Listen(host string, port int) (*net.TCPAddr, error) {
	if port < 0 || port > 65535 {
		return nil, errOp(C.TERN_ERR_INVALID, "listen", "port out of range")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, errOp(C.TERN_ERR_INVALID, "listen", "not a numeric address: "+host)
	}
	w.ctl.Lock()
	defer w.ctl.Unlock()
	if w.p == nil {
		return nil, errOp(C.TERN_ERR_CLOSED, "listen", "workers closed")
	}
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var bound C.uint16_t
	if rc := C.tern_workers_listen(w.p, ch, C.uint16_t(port), &bound); rc != 0 {
		return nil, newError(rc, "listen "+net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return &net.TCPAddr{IP: ip, Port: int(bound)}, nil
}

// Start starts the worker threads. Messages published before Start are
// delivered once they run. Errors: ErrState (running), ErrClosed,
// ErrNoMem (a thread could not start; none runs then).
func (w *Workers) Start() error {
	w.ctl.Lock()
	defer w.ctl.Unlock()
	if w.p == nil {
		return errOp(C.TERN_ERR_CLOSED, "start", "workers closed")
	}
	rc := C.tern_workers_start(w.p)
	if rc == 0 {
		w.running = true
	}
	return newError(rc, "start")
}

// Stop stops every worker thread after its current turn and waits for
// them; the hubs, their sessions and their connections stay (Start runs
// them again), and publishes wait in the inboxes meanwhile. Stopping
// stopped or closed workers does nothing.
func (w *Workers) Stop() {
	w.ctl.Lock()
	defer w.ctl.Unlock()
	if w.p != nil {
		C.tern_workers_stop(w.p)
		w.running = false
	}
}

// Close stops the workers and frees them with their hubs, connections
// (closed without a goodbye) and listeners (tern_workers_del); what is
// still queued is lost. Publish returns ErrClosed afterwards. Close is
// idempotent and returns nil.
func (w *Workers) Close() error {
	w.ctl.Lock()
	defer w.ctl.Unlock()
	if w.p == nil {
		return nil
	}
	// Join the threads before taking the pointer's lock: a callback may be
	// inside Publish.
	C.tern_workers_stop(w.p)
	w.running = false
	w.mu.Lock()
	p := w.p
	w.p = nil
	w.mu.Unlock()
	C.go_http_del(w.http)
	w.http = nil
	C.go_workers_del(p, w.cbs)
	w.cbs = nil
	w.cb.Delete()
	runtime.SetFinalizer(w, nil)
	return nil
}

// workersBufs holds packing buffers for Publish, which runs on many
// goroutines at once.
var workersBufs = sync.Pool{New: func() interface{} { return new(workersBuf) }}

type workersBuf struct {
	buf []byte
	msg C.go_msg
}

// Publish queues a copy of msg for the session (1..MaxSessionKey bytes)
// on the worker that owns it, which publishes it into its hub as
// Hub.Publish would; the publish's own result goes to WorkersOptions.Done.
// Safe from any goroutine, before and after Start. Errors: ErrInvalid
// (empty session, NUL bytes in a content type or attribute), ErrTooLarge
// (session, id, collapse key, content type or attribute count over their
// limits), ErrNoMem, ErrClosed.
func (w *Workers) Publish(session string, msg *Message) error {
	if msg == nil {
		msg = &Message{}
	}
	b := workersBufs.Get().(*workersBuf)
	defer workersBufs.Put(b)
	var err error
	b.buf, err = packMsg(b.buf[:0], &b.msg, session, msg, false, "workers publish")
	if err != nil {
		return err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.p == nil {
		return errOp(C.TERN_ERR_CLOSED, "workers publish", "workers closed")
	}
	return newError(C.go_workers_publish(w.p, &b.msg, bufPtr(b.buf), bufPtr(msg.Payload)), "workers publish")
}

//export goTernAuthorize
func goTernAuthorize(h C.uintptr_t, worker C.uint32_t, key *C.uint8_t, keylen C.size_t,
	token *C.uint8_t, tokenlen C.size_t) (ok C.int) {
	cb := cgo.Handle(h).Value().(*workersCallbacks)
	defer func() {
		if recover() != nil { // a panic refuses the HELLO
			ok = 0
		}
	}()
	var tok []byte
	if tokenlen > 0 {
		tok = C.GoBytes(unsafe.Pointer(token), C.int(tokenlen))
	}
	if cb.authorize(string(C.GoBytes(unsafe.Pointer(key), C.int(keylen))), tok) {
		return 1
	}
	return 0
}

//export goTernDone
func goTernDone(h C.uintptr_t, worker C.uint32_t, cookie C.uint64_t, rc C.int) {
	cb := cgo.Handle(h).Value().(*workersCallbacks)
	cb.done(int(worker), uint64(cookie), newError(rc, "publish"))
}
