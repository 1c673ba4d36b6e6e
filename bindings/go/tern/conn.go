package tern

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
	"unsafe"
)

// Framing names what a connection speaks.
type Framing int

// The framings.
const (
	// FramingBinary is the two-way binary framing of tern-protocol(7):
	// Hub.NewConn.
	FramingBinary Framing = C.TERN_FRAMING_BINARY
	// FramingSSE is text/event-stream (Server-Sent Events), one-way.
	FramingSSE Framing = C.TERN_FRAMING_SSE
	// FramingNDJSON is one JSON envelope per line, one-way.
	FramingNDJSON Framing = C.TERN_FRAMING_NDJSON
	// FramingPoll is one JSON array per answer (long or short poll).
	FramingPoll Framing = C.TERN_FRAMING_POLL
	// FramingWSBin is the binary framing over WebSocket messages
	// (subprotocol "tern.bin"): two-way, its HELLO names the session
	// (HTTPRequest.WebSocket, Linux).
	FramingWSBin Framing = C.TERN_FRAMING_WS_BIN
	// FramingWSJSON is JSON envelopes over WebSocket text messages
	// (subprotocol "tern.json"), bound to the session of the request
	// (HTTPRequest.WebSocket, Linux).
	FramingWSJSON Framing = C.TERN_FRAMING_WS_JSON
)

// ContentType returns the media type of the framing's response body
// ("text/event-stream", "application/x-ndjson", "application/json"), or ""
// for the binary framing.
func (f Framing) ContentType() string {
	ct := C.tern_framing_content_type(C.int(f))
	if ct == nil {
		return ""
	}
	return C.GoString(ct)
}

// String returns "binary", "sse", "ndjson", "poll", "ws-bin" or
// "ws-json".
func (f Framing) String() string {
	switch f {
	case FramingBinary:
		return "binary"
	case FramingSSE:
		return "sse"
	case FramingNDJSON:
		return "ndjson"
	case FramingPoll:
		return "poll"
	case FramingWSBin:
		return "ws-bin"
	case FramingWSJSON:
		return "ws-json"
	}
	return "Framing(" + itoa(int64(f)) + ")"
}

// GoAwayReason says why a connection was closed (tern_goaway_reason).
type GoAwayReason uint32

// The reasons.
const (
	GoAwayRestart  GoAwayReason = C.TERN_GOAWAY_RESTART   // the server restarts or shuts down
	GoAwayProto    GoAwayReason = C.TERN_GOAWAY_PROTO     // the peer broke the protocol
	GoAwayTooLarge GoAwayReason = C.TERN_GOAWAY_TOO_LARGE // a frame or field exceeded a limit
	GoAwayTimeout  GoAwayReason = C.TERN_GOAWAY_TIMEOUT   // no HELLO in time, or the peer went silent
	GoAwayRejected GoAwayReason = C.TERN_GOAWAY_REJECTED  // the host rejected the HELLO
	GoAwayLimit    GoAwayReason = C.TERN_GOAWAY_LIMIT     // too many connections or sessions
	GoAwayInternal GoAwayReason = C.TERN_GOAWAY_INTERNAL  // the server ran out of memory
	GoAwayClient   GoAwayReason = C.TERN_GOAWAY_CLIENT    // the client said goodbye
	GoAwayReplaced GoAwayReason = C.TERN_GOAWAY_REPLACED  // the host closed it, or a newer connection resumed
	GoAwayDone     GoAwayReason = C.TERN_GOAWAY_DONE      // a poll's answer is complete
)

// Conn is one connection of a hub: a binary two-way connection (NewConn)
// or a one-way web stream (NewStream). The host moves its bytes: Write
// gives it what the peer sent, Fill, WriteTo and Pump take what it has for
// the peer (PeekOutput and Consume for a transport that may take only
// part of them). Close it when its transport is gone or after its end event.
type Conn struct {
	s       *hubState
	p       *C.tern_conn // nil once deleted
	framing Framing
	ready   chan struct{}
}

func (s *hubState) addConn(p *C.tern_conn, f Framing) *Conn {
	c := &Conn{s: s, p: p, framing: f, ready: make(chan struct{}, 1)}
	s.conns[p] = c
	return c
}

// signal wakes the goroutine waiting on the connection, if any.
func (c *Conn) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// NewConn creates a connection speaking the binary framing, not yet bound
// to a session: the peer's first frame must be HELLO.
func (h *Hub) NewConn() (*Conn, error) {
	s := h.s
	if err := s.lock("new conn"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var p *C.tern_conn
	rc := C.tern_conn_new(&p, s.p, s.now())
	if rc != 0 {
		return nil, newError(rc, "new conn")
	}
	c := s.addConn(p, FramingBinary)
	s.after(false)
	return c, nil
}

// StreamOptions describes a one-way web connection for NewStream.
type StreamOptions struct {
	// Framing is FramingSSE, FramingNDJSON or FramingPoll.
	Framing Framing
	// Key is the session key; the session is created when it does not
	// exist.
	Key string
	// ResumeEpoch and ResumeSeq say what the receiver already has (from
	// ParseResume of a Last-Event-ID, or ?seq=N with epoch 0): the
	// messages up to it are acked and the rest is sent again here.
	ResumeEpoch uint64
	ResumeSeq   uint64
	// Heartbeat is the SSE/NDJSON heartbeat interval; 0 takes the hub's.
	Heartbeat time.Duration
	// Retry is the reconnection delay written first to an SSE stream; 0
	// writes none.
	Retry time.Duration
	// PollHold is how long a poll waits for a message; 0 takes the
	// library's default (25 s). ShortPoll answers at once instead.
	PollHold  time.Duration
	ShortPoll bool
}

// NewStream creates a one-way connection of o.Framing bound at once to the
// session o.Key (the host authenticated the request already). Its bytes
// are the HTTP response body; the host writes status and headers
// (o.Framing.ContentType()). Errors: ErrInvalid, ErrTooLarge, ErrNoMem,
// ErrLimit.
func (h *Hub) NewStream(o StreamOptions) (*Conn, error) {
	s := h.s
	if err := s.lock("new stream"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var so C.tern_stream_opts
	C.tern_stream_opts_default_versioned(C.TERN_STREAM_OPTS_VERSION, &so)
	so.framing = C.int(o.Framing)
	k, n := s.keyPtr(o.Key)
	so.keylen = n
	so.resume_epoch = C.uint64_t(o.ResumeEpoch)
	so.resume_seq = C.uint64_t(o.ResumeSeq)
	so.heartbeat_interval = durToC(o.Heartbeat)
	so.retry = durToC(o.Retry)
	if o.ShortPoll {
		so.poll_hold = 0
	} else if o.PollHold > 0 {
		so.poll_hold = durToC(o.PollHold)
	}
	var p *C.tern_conn
	rc := C.go_new_stream(&p, s.p, &so, k, s.now())
	if rc != 0 {
		s.after(true)
		return nil, newError(rc, "new stream")
	}
	c := s.addConn(p, o.Framing)
	s.after(true)
	return c, nil
}

// Framing returns the connection's framing.
func (c *Conn) Framing() Framing { return c.framing }

// lock locks the hub and fails with ErrClosed when the connection was
// deleted or the hub closed.
func (c *Conn) lock(op string) error {
	if err := c.s.lock(op); err != nil {
		return err
	}
	if c.p == nil {
		c.s.mu.Unlock()
		return errOp(C.TERN_ERR_CLOSED, op, "connection deleted")
	}
	return nil
}

// Write gives the connection bytes received from the peer (tern_conn_read)
// and returns how many it consumed: all of them, except on a producer
// connection that owes as many PUBACKs as it holds room for, where it
// returns fewer with ErrBackpressure. A protocol error (ErrProto,
// ErrTooLarge, ErrLimit, ErrNoMem) closes the connection: write out its
// output, then Close it.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.lock("conn write"); err != nil {
		return 0, err
	}
	s := c.s
	defer s.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	rc := C.tern_conn_read(c.p, (*C.uint8_t)(&p[0]), C.size_t(len(p)), s.now())
	s.after(true)
	if rc < 0 {
		return 0, newErrorSize(rc, "conn write")
	}
	if int(rc) < len(p) {
		return int(rc), ErrBackpressure
	}
	return int(rc), nil
}

// Fill fills p with bytes for the peer (tern_conn_write) and returns how
// many: control frames first, then messages by priority, as far as the
// in-flight window allows. 0 means nothing to send now. Once the
// connection is closed and everything was written it returns ErrClosed;
// ErrState while bytes of PeekOutput are not consumed. One call may fill
// many frames: the fast path.
func (c *Conn) Fill(p []byte) (int, error) {
	if err := c.lock("conn fill"); err != nil {
		return 0, err
	}
	s := c.s
	defer s.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	rc := C.tern_conn_write(c.p, (*C.uint8_t)(&p[0]), C.size_t(len(p)), s.now())
	if rc < 0 {
		return 0, newErrorSize(rc, "conn fill")
	}
	return int(rc), nil
}

var bufPool = sync.Pool{New: func() interface{} { b := make([]byte, 32<<10); return &b }}

// PeekMax is the most bytes one PeekOutput returns (TERN_CONN_PEEK_MAX).
const PeekMax = C.TERN_CONN_PEEK_MAX

// PeekOutput returns a copy of the bytes the connection has for the peer
// (tern_conn_peek_output), at most PeekMax, or nil when there is nothing
// to send now; it is Fill for a transport that may take only part of
// them. The connection keeps the bytes: PeekOutput returns the same ones
// until Consume marks them sent, and only then takes more from the hub.
// While bytes are held Fill fails with ErrState and WantWrite is true.
// Once the connection is closed and everything was consumed it returns
// ErrClosed; ErrNoMem as Fill.
func (c *Conn) PeekOutput() ([]byte, error) {
	if err := c.lock("peek output"); err != nil {
		return nil, err
	}
	defer c.s.mu.Unlock()
	var data *C.uint8_t
	rc := C.tern_conn_peek_output(c.p, &data, c.s.now())
	if rc <= 0 {
		return nil, newErrorSize(rc, "peek output")
	}
	return C.GoBytes(unsafe.Pointer(data), C.int(rc)), nil
}

// Consume marks the first n bytes of the last PeekOutput as sent
// (tern_conn_consume): the number the transport took. ErrInvalid when n
// is negative or more than the connection holds; ErrClosed once the
// connection was deleted or its hub closed.
func (c *Conn) Consume(n int) error {
	if err := c.lock("consume"); err != nil {
		return err
	}
	defer c.s.mu.Unlock()
	if n < 0 {
		return errOp(C.TERN_ERR_INVALID, "consume", "negative count")
	}
	return newError(C.tern_conn_consume(c.p, C.size_t(n)), "consume")
}

// advance consumes the |sent| bytes of the last peek and copies the next
// held bytes (at most PeekMax, len(buf) >= PeekMax) into buf, under one
// lock: the step of sendHeld, the send loop of WriteTo and Pump. The bytes
// stay held in the connection until the next advance consumes them, so a
// transport that fails loses nothing.
func (c *Conn) advance(sent int, buf []byte, op string) (int, error) {
	if err := c.lock(op); err != nil {
		return 0, err
	}
	defer c.s.mu.Unlock()
	if sent > 0 {
		if rc := C.tern_conn_consume(c.p, C.size_t(sent)); rc != 0 {
			return 0, newError(rc, op)
		}
	}
	var data *C.uint8_t
	rc := C.tern_conn_peek_output(c.p, &data, c.s.now())
	if rc <= 0 {
		return 0, newErrorSize(rc, op)
	}
	return copy(buf, unsafe.Slice((*byte)(unsafe.Pointer(data)), int(rc))), nil
}

var errBadWriteCount = errors.New("tern: the io.Writer returned an invalid count")

// send writes the peeked buf[:n] to w and returns how many bytes w took:
// a short write without an error is io.ErrShortWrite, as in io.Copy.
func send(w io.Writer, buf []byte, n int) (int, error) {
	m, err := w.Write(buf[:n])
	if m < 0 || m > n {
		m = 0
		if err == nil {
			err = errBadWriteCount
		}
	}
	if err == nil && m < n {
		err = io.ErrShortWrite
	}
	return m, err
}

// peeker is what sends through a peek: Conn and Client.
type peeker interface {
	advance(sent int, buf []byte, op string) (int, error)
	Consume(n int) error
}

// sendHeld is the send loop of WriteTo and Pump: it writes what p holds to
// w, peek by peek, until p has nothing more for now (err: nil, or p's
// error such as ErrClosed) or w fails (werr). What w took is consumed; the
// rest stays held in p, so a failing transport loses nothing.
func sendHeld(p peeker, w io.Writer, buf []byte, op string) (total int64, err, werr error) {
	sent := 0
	for {
		var n int
		if n, err = p.advance(sent, buf, op); n == 0 {
			return total, err, nil
		}
		sent, werr = send(w, buf, n)
		total += int64(sent)
		if werr != nil {
			// Consume fails only when p is gone, and its bytes with it.
			_ = p.Consume(sent)
			return total, nil, werr
		}
	}
}

// WriteTo writes everything the connection has for the peer now to w, and
// returns when nothing is left (nil) or once the connection is closed and
// drained (ErrClosed), or on w's error. It implements io.WriterTo; it does
// not wait for more (see Pump). It sends through PeekOutput and Consume:
// when w takes only part of the bytes and fails, the connection keeps the
// rest and the next WriteTo (or PeekOutput) sends it first; until then
// Fill fails with ErrState.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	total, err, werr := sendHeld(c, w, *bp, "conn write to")
	if werr != nil {
		return total, werr
	}
	return total, err
}

// WantWrite reports whether Fill has something to write now, or bytes of
// PeekOutput wait for Consume.
func (c *Conn) WantWrite() bool {
	if c.lock("want write") != nil {
		return false
	}
	defer c.s.mu.Unlock()
	return C.tern_conn_want_write(c.p) != 0
}

// Closed reports whether the connection is closed (its end event is
// queued) or deleted.
func (c *Conn) Closed() bool {
	if c.lock("closed") != nil {
		return true
	}
	defer c.s.mu.Unlock()
	return C.tern_conn_is_closed(c.p) != 0
}

// Wait blocks until the connection has something to write, is closed, or
// ctx is done (ctx.Err()). Publishes, acks and the hub's deadlines wake
// it: run Hub.Run for the deadlines (heartbeats, polls' hold time).
func (c *Conn) Wait(ctx context.Context) error {
	s := c.s
	for {
		if err := c.lock("wait"); err != nil {
			return nil
		}
		if C.tern_conn_want_write(c.p) != 0 || C.tern_conn_is_closed(c.p) != 0 {
			s.mu.Unlock()
			return nil
		}
		s.waiters[c] = struct{}{}
		s.mu.Unlock()
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-c.ready:
		}
		s.mu.Lock()
		delete(s.waiters, c)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Pump writes the connection's output to w as it comes, until the
// connection ends (nil: everything it had was written), ctx is done
// (ctx.Err()) or w fails. After each burst it flushes w when w has a
// Flush() or Flush() error method (http.Flusher, bufio.Writer). It needs
// Hub.Run for heartbeats and poll hold times. It does not Close the
// connection.
func (c *Conn) Pump(ctx context.Context, w io.Writer) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		total, err, werr := sendHeld(c, w, buf, "pump")
		if werr != nil {
			return werr // as in WriteTo: the rest stays held
		}
		if total > 0 {
			if ferr := flush(w); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil && !errors.Is(err, ErrNoMem) {
			return err
		}
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
}

func flush(w io.Writer) error {
	switch f := w.(type) {
	case interface{ Flush() error }:
		return f.Flush()
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}

// Accept completes a HELLO that waits for the host (Options.HelloAccept):
// the connection binds to its session and a WELCOME is queued.
func (c *Conn) Accept() error {
	if err := c.lock("accept"); err != nil {
		return err
	}
	defer c.s.mu.Unlock()
	rc := C.tern_conn_accept(c.p, c.s.now())
	c.s.after(true)
	return newError(rc, "accept")
}

// GoAway queues a GOAWAY with reason and retry hint and closes the
// connection; to refuse a waiting HELLO use GoAwayRejected.
func (c *Conn) GoAway(reason GoAwayReason, retry time.Duration) error {
	if err := c.lock("goaway"); err != nil {
		return err
	}
	defer c.s.mu.Unlock()
	rc := C.tern_conn_goaway(c.p, C.uint32_t(reason), durToC(retry), c.s.now())
	c.s.after(true)
	return newError(rc, "goaway")
}

// AllowPublish lets the peer publish with PUBLISH frames (or stops it).
func (c *Conn) AllowPublish(allow bool) error {
	if err := c.lock("allow publish"); err != nil {
		return err
	}
	defer c.s.mu.Unlock()
	a := C.int(0)
	if allow {
		a = 1
	}
	return newError(C.tern_conn_allow_publish(c.p, a), "allow publish")
}

// SessionKey returns the key of the session the connection is bound to,
// and false before its HELLO is accepted and after it closed.
func (c *Conn) SessionKey() (string, bool) {
	if c.lock("session key") != nil {
		return "", false
	}
	defer c.s.mu.Unlock()
	sp := C.tern_conn_get_session(c.p)
	if sp == nil {
		return "", false
	}
	var in C.tern_session_info
	C.tern_session_get_info(sp, &in, C.sizeof_tern_session_info)
	return C.GoStringN((*C.char)(unsafe.Pointer(in.key)), C.int(in.keylen)), true
}

// ConnInfo describes a connection now.
type ConnInfo struct {
	Closed            bool          // closed (its end event is queued)
	Inflight          int           // messages sent on it, not acked
	RTT               time.Duration // last PING/PONG round trip, 0 unknown
	HeartbeatInterval time.Duration // negotiated
	LivenessTimeout   time.Duration // negotiated
	Err               error         // why it closed, or nil
}

// Info describes the connection (zero once deleted).
func (c *Conn) Info() ConnInfo {
	if c.lock("conn info") != nil {
		return ConnInfo{Closed: true}
	}
	defer c.s.mu.Unlock()
	var in C.tern_conn_info
	C.tern_conn_get_info(c.p, &in, C.sizeof_tern_conn_info)
	return ConnInfo{
		Closed:            in.closed != 0,
		Inflight:          int(in.inflight),
		RTT:               time.Duration(in.rtt),
		HeartbeatInterval: time.Duration(in.heartbeat_interval),
		LivenessTimeout:   time.Duration(in.liveness_timeout),
		Err:               newError(in.error, "conn"),
	}
}

// Close deletes the connection (tern_conn_del): its in-flight messages go
// back to the session, to be sent again unless acked first. Call it when
// the transport is gone, or after the connection's end event once its
// output was written. Idempotent; always nil.
func (c *Conn) Close() error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.p == nil || s.p == nil {
		c.p = nil
		return nil
	}
	delete(s.conns, c.p)
	delete(s.waiters, c)
	C.tern_conn_del(c.p)
	c.p = nil
	c.signal()
	s.after(false)
	return nil
}

// ParseResume parses a resume position: an SSE Last-Event-ID
// "<epoch>.<seq>", or a bare "<seq>" (epoch 0, "not known"). ErrInvalid
// for anything else.
func ParseResume(text string) (epoch, seq uint64, err error) {
	if len(text) == 0 {
		return 0, 0, errOp(C.TERN_ERR_INVALID, "parse resume", "empty")
	}
	b := []byte(text)
	var e, q C.uint64_t
	rc := C.tern_stream_parse_resume((*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)), &e, &q)
	if rc != 0 {
		return 0, 0, newError(rc, "parse resume")
	}
	return uint64(e), uint64(q), nil
}
