package tern

/*
#include "shim.h"
*/
import "C"

import (
	"io"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Client is the receiving end of the binary framing (tern_client),
// sans-I/O like the hub: it speaks tern-protocol(7) and owns HELLO with the
// last seq, dedup, batched acks, liveness and reconnect backoff. The host
// owns the transport: it opens one on ClientEventConnect, calls Connect once
// it is up, moves bytes with Write (from the server) and Fill or WriteTo
// (to the server; PeekOutput and Consume for a transport that may take
// only part of them), and reports a broken transport with ConnLost. A
// Client may be used from several goroutines; Close releases it.
type Client struct {
	mu    sync.Mutex
	p     *C.tern_client // nil once closed
	clock Clock
	buf   []byte
	sc    *C.go_scratch // C memory: message and event
	kick  chan struct{} // wakes Run after Ack, Publish, Goodbye
}

// wake tells Run that the client may have bytes to write.
func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// ClientOptions configures a Client (tern_client_settings). Start from
// DefaultClientOptions.
type ClientOptions struct {
	// Heartbeat is the interval asked for in HELLO; 0 takes the server's.
	Heartbeat time.Duration
	// LivenessTimeout: no bytes from the server this long declares the
	// connection dead. 7 s.
	LivenessTimeout time.Duration
	// AckEvery: an ACK goes out after this many messages. 10.
	AckEvery uint32
	// AckDelay: ... or when the oldest unacked one is this old. 1 s.
	AckDelay time.Duration
	// ManualAck acks only what the app passes to Ack.
	ManualAck bool
	// DedupMax and DedupWindow bound the ids remembered for dedup. 10000,
	// 10 min; DedupMax 0 turns dedup off.
	DedupMax    uint32
	DedupWindow time.Duration
	// BackoffBase, BackoffCap and MaxAttempts shape the reconnect backoff
	// (full jitter). 1 s, 15 s, 6; MaxAttempts 0 never gives up.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	MaxAttempts uint32
	// AdaptiveHeartbeat probes longer keepalive intervals, up to
	// HeartbeatCap (5 min).
	AdaptiveHeartbeat bool
	HeartbeatCap      time.Duration
	// Seed feeds the jitter; 0 draws one from crypto/rand.
	Seed uint64
	// MaxPayload is the largest payload accepted. 1 MiB.
	MaxPayload int
	// Clock is the client's time source; nil takes MonotonicClock.
	Clock Clock
}

// DefaultClientOptions returns the library's defaults.
func DefaultClientOptions() ClientOptions {
	var s C.tern_client_settings
	C.tern_client_settings_default_versioned(C.TERN_CLIENT_SETTINGS_VERSION, &s)
	return ClientOptions{
		Heartbeat:         time.Duration(s.heartbeat_interval),
		LivenessTimeout:   time.Duration(s.liveness_timeout),
		AckEvery:          uint32(s.ack_every),
		AckDelay:          time.Duration(s.ack_delay),
		ManualAck:         s.manual_ack != 0,
		DedupMax:          uint32(s.dedup_max),
		DedupWindow:       time.Duration(s.dedup_window),
		BackoffBase:       time.Duration(s.backoff_base),
		BackoffCap:        time.Duration(s.backoff_cap),
		MaxAttempts:       uint32(s.max_attempts),
		AdaptiveHeartbeat: s.adaptive_heartbeat != 0,
		HeartbeatCap:      time.Duration(s.heartbeat_cap),
		MaxPayload:        int(s.max_payload),
	}
}

// NewClient creates a client for the session key with token (may be
// nil); it asks for a transport at once (ClientEventConnect). o nil takes
// DefaultClientOptions(). Errors: ErrInvalid, ErrTooLarge, ErrNoMem.
func NewClient(key string, token []byte, o *ClientOptions) (*Client, error) {
	if o == nil {
		d := DefaultClientOptions()
		o = &d
	}
	var s C.tern_client_settings
	C.tern_client_settings_default_versioned(C.TERN_CLIENT_SETTINGS_VERSION, &s)
	s.heartbeat_interval = durToC(o.Heartbeat)
	s.liveness_timeout = durToC(o.LivenessTimeout)
	s.ack_every = C.uint32_t(o.AckEvery)
	s.ack_delay = durToC(o.AckDelay)
	s.manual_ack = cbool(o.ManualAck)
	s.dedup_max = C.uint32_t(o.DedupMax)
	s.dedup_window = durToC(o.DedupWindow)
	s.backoff_base = durToC(o.BackoffBase)
	s.backoff_cap = durToC(o.BackoffCap)
	s.max_attempts = C.uint32_t(o.MaxAttempts)
	s.adaptive_heartbeat = cbool(o.AdaptiveHeartbeat)
	s.heartbeat_cap = durToC(o.HeartbeatCap)
	seed := o.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	s.seed = C.uint64_t(seed)
	if o.MaxPayload < 0 {
		return nil, errOp(C.TERN_ERR_INVALID, "new client", "negative size")
	}
	s.max_payload = C.size_t(o.MaxPayload)
	c := &Client{clock: o.Clock, kick: make(chan struct{}, 1)}
	if c.clock == nil {
		c.clock = MonotonicClock
	}
	c.buf = append(append(c.buf[:0], key...), token...)
	base := bufPtr(c.buf)
	var tok *C.uint8_t
	if len(token) > 0 {
		tok = (*C.uint8_t)(unsafe.Add(unsafe.Pointer(base), len(key)))
	}
	if len(key) == 0 {
		base = nil
	}
	var p *C.tern_client
	rc := C.tern_client_new(&p, base, C.size_t(len(key)), tok, C.size_t(len(token)), &s, nil, c.now())
	if rc != 0 {
		return nil, newError(rc, "new client")
	}
	if c.sc = C.go_scratch_new(); c.sc == nil {
		C.tern_client_del(p)
		return nil, errOp(C.TERN_ERR_NOMEM, "new client", "")
	}
	c.p = p
	runtime.SetFinalizer(c, (*Client).Close)
	return c, nil
}

func (c *Client) now() C.tern_tstamp { return tstamp(c.clock()) }

func (c *Client) lock(op string) error {
	c.mu.Lock()
	if c.p == nil {
		c.mu.Unlock()
		return errOp(C.TERN_ERR_CLOSED, op, "client released")
	}
	return nil
}

// Close releases the client and every event still queued (tern_client_del).
// To say goodbye to the server first, call Goodbye and write its output.
// Idempotent; always nil.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		C.tern_client_del(c.p)
		c.p = nil
		C.go_scratch_del(c.sc)
		c.sc = nil
	}
	runtime.SetFinalizer(c, nil)
	return nil
}

// Goodbye says goodbye (tern_client_close): pending ACKs and a GOAWAY go
// out, no reconnect follows; the transport ends with
// ClientEventDisconnected (GoAwayClient).
func (c *Client) Goodbye() error {
	if err := c.lock("goodbye"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	defer c.wake()
	return newError(C.tern_client_close(c.p, c.now()), "goodbye")
}

// Connect tells the client the transport it asked for is up: HELLO is
// queued. Errors: ErrState (a connection is up), ErrClosed (after
// Goodbye), ErrNoMem.
func (c *Client) Connect() error {
	if err := c.lock("connect"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return newError(C.tern_client_connect(c.p, c.now()), "connect")
}

// ConnLost tells the client the transport broke, or could not be opened.
// Bytes of PeekOutput (or of a failed WriteTo) not consumed go with it.
func (c *Client) ConnLost() error {
	if err := c.lock("conn lost"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return newError(C.tern_client_conn_lost(c.p, c.now()), "conn lost")
}

// Write gives the client bytes from the server (tern_client_read); it
// consumes them all. ErrProto, ErrTooLarge or ErrNoMem end the connection
// (its ClientEventDisconnected is queued).
func (c *Client) Write(p []byte) (int, error) {
	if err := c.lock("client write"); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	rc := C.tern_client_read(c.p, (*C.uint8_t)(&p[0]), C.size_t(len(p)), c.now())
	if rc < 0 {
		return 0, newErrorSize(rc, "client write")
	}
	return int(rc), nil
}

// Fill fills p with bytes for the server (HELLO, ACK, PING, PONG, GOAWAY,
// PUBLISH) and returns how many; 0 means nothing now. ErrState: no
// transport, or bytes of PeekOutput (or of a failed WriteTo) are not
// consumed; ErrClosed: the goodbye was written.
func (c *Client) Fill(p []byte) (int, error) {
	if err := c.lock("client fill"); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	rc := C.tern_client_write(c.p, (*C.uint8_t)(&p[0]), C.size_t(len(p)), c.now())
	if rc < 0 {
		return 0, newErrorSize(rc, "client fill")
	}
	return int(rc), nil
}

// PeekOutput returns a copy of the bytes the client has for the server
// (tern_client_peek_output): one control frame, or up to 16 KiB of queued
// PUBLISH frames; nil when there is nothing to send now. It is Fill
// for a transport that may take only part of them. The client keeps the
// bytes: PeekOutput offers them again until Consume marks them sent
// (after a partial Consume, the rest first).
// While bytes are held Fill fails with ErrState and WantWrite is true;
// ConnLost (or a ClientEventDisconnected) drops them. ErrState: no
// transport; ErrClosed: the goodbye was consumed.
func (c *Client) PeekOutput() ([]byte, error) {
	if err := c.lock("client peek output"); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	var data *C.uint8_t
	rc := C.tern_client_peek_output(c.p, &data, c.now())
	if rc <= 0 {
		return nil, newErrorSize(rc, "client peek output")
	}
	return C.GoBytes(unsafe.Pointer(data), C.int(rc)), nil
}

// Consume marks the first n bytes of the last PeekOutput as sent
// (tern_client_consume): the number the transport took. Once the GOAWAY of
// Goodbye is consumed the client is closed. ErrInvalid when n is negative
// or more than the client holds; ErrClosed once the client was released.
func (c *Client) Consume(n int) error {
	if err := c.lock("client consume"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if n < 0 {
		return errOp(C.TERN_ERR_INVALID, "client consume", "negative count")
	}
	return newError(C.tern_client_consume(c.p, C.size_t(n)), "client consume")
}

// advance is Conn.advance for the client: it consumes the |sent| bytes of
// the last peek and copies the next held bytes into buf (as many as fit:
// the rest stays held for the next peek), under one lock.
func (c *Client) advance(sent int, buf []byte, op string) (int, error) {
	if err := c.lock(op); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	if sent > 0 {
		if rc := C.tern_client_consume(c.p, C.size_t(sent)); rc != 0 {
			return 0, newError(rc, op)
		}
	}
	var data *C.uint8_t
	rc := C.tern_client_peek_output(c.p, &data, c.now())
	if rc <= 0 {
		return 0, newErrorSize(rc, op)
	}
	return copy(buf, unsafe.Slice((*byte)(unsafe.Pointer(data)), int(rc))), nil
}

// WriteTo writes everything the client has for the server now to w
// (io.WriterTo); it returns nil when nothing is left. It sends through
// PeekOutput and Consume: what w does not take (a short write is
// io.ErrShortWrite) stays held in the client, and the next WriteTo (or
// PeekOutput) on the same transport sends it first; until then Fill fails
// with ErrState. ConnLost drops it.
func (c *Client) WriteTo(w io.Writer) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	total, err, werr := sendHeld(c, w, *bp, "client write to")
	if werr != nil {
		return total, werr
	}
	return total, err
}

// WantWrite reports whether Fill has bytes now, or bytes of PeekOutput
// wait for Consume.
func (c *Client) WantWrite() bool {
	if c.lock("want write") != nil {
		return false
	}
	defer c.mu.Unlock()
	return C.tern_client_want_write(c.p) != 0
}

// Ack acknowledges every delivered message up to seq (with ManualAck,
// what lets ACKs go out).
func (c *Client) Ack(seq uint64) error {
	if err := c.lock("client ack"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	defer c.wake()
	return newError(C.tern_client_ack(c.p, C.uint64_t(seq), c.now()), "client ack")
}

// Expiry returns the client's earliest deadline on its clock, and false
// when it has none.
func (c *Client) Expiry() (time.Duration, bool) {
	if c.lock("client expiry") != nil {
		return 0, false
	}
	defer c.mu.Unlock()
	exp := uint64(C.tern_client_get_expiry(c.p))
	if exp == tstampNone {
		return 0, false
	}
	return time.Duration(exp), true
}

// HandleExpiry runs the client's due deadlines (liveness, ack delay,
// keepalive, reconnect).
func (c *Client) HandleExpiry() error {
	if err := c.lock("client handle expiry"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return newError(C.tern_client_handle_expiry(c.p, c.now()), "client handle expiry")
}

// ClientEventType names a client event.
type ClientEventType int

// The client events.
const (
	ClientEventConnect      ClientEventType = C.TERN_CLIENT_EV_CONNECT      // open a transport now, then Connect
	ClientEventConnected    ClientEventType = C.TERN_CLIENT_EV_CONNECTED    // WELCOME came; Count 1 if resumed
	ClientEventMessage      ClientEventType = C.TERN_CLIENT_EV_MESSAGE      // a message for the app
	ClientEventGap          ClientEventType = C.TERN_CLIENT_EV_GAP          // the server lost Count messages
	ClientEventResync       ClientEventType = C.TERN_CLIENT_EV_RESYNC       // the stream restarted: re-sync the app
	ClientEventDisconnected ClientEventType = C.TERN_CLIENT_EV_DISCONNECTED // the transport ended: close it
	ClientEventGiveUp       ClientEventType = C.TERN_CLIENT_EV_GIVE_UP      // Count attempts failed in a row
	ClientEventPuback       ClientEventType = C.TERN_CLIENT_EV_PUBACK       // the answer to a Publish (Seq its request)
)

// ClientTransportLost is the Reason of the ClientEventDisconnected that
// ConnLost queues.
const ClientTransportLost = C.TERN_CLIENT_TRANSPORT_LOST

// PubackStatus is the outcome of a client's publish.
type PubackStatus int

// The PUBACK statuses.
const (
	PubackAccepted  PubackStatus = C.TERN_PUBACK_ACCEPTED
	PubackPersisted PubackStatus = C.TERN_PUBACK_PERSISTED
	PubackDuplicate PubackStatus = C.TERN_PUBACK_DUPLICATE
	PubackFull      PubackStatus = C.TERN_PUBACK_FULL
	PubackInvalid   PubackStatus = C.TERN_PUBACK_INVALID
	PubackTooLarge  PubackStatus = C.TERN_PUBACK_TOO_LARGE
	PubackNotFound  PubackStatus = C.TERN_PUBACK_NOT_FOUND
	PubackLimit     PubackStatus = C.TERN_PUBACK_LIMIT
	PubackInternal  PubackStatus = C.TERN_PUBACK_INTERNAL
	PubackStore     PubackStatus = C.TERN_PUBACK_STORE
)

// ClientEvent is one client event, copied out of the client.
type ClientEvent struct {
	Type ClientEventType
	// Reason: a DropReason (Gap), a resync reason (Resync), a GoAwayReason
	// or ClientTransportLost (Disconnected), a PubackStatus (Puback).
	Reason      int
	Seq         uint64        // Message: its seq (for Ack); Puback: the request
	Count       uint64        // see the event types
	Priority    Priority      // Message
	TTL         time.Duration // Message: remaining lifetime; 0 none
	RetryAfter  time.Duration // Disconnected, Puback: the server's hint
	ID          []byte        // Message, Puback: the message id
	CollapseKey []byte
	ContentType string
	Payload     []byte
	Attrs       []Attr
}

// NextEvent takes the next client event, and false when there is none.
func (c *Client) NextEvent() (ClientEvent, bool) {
	if c.lock("client next event") != nil {
		return ClientEvent{}, false
	}
	defer c.mu.Unlock()
	ev := &c.sc.cev
	if C.tern_client_next_event_versioned(c.p, C.TERN_CLIENT_EVENT_VERSION, ev) != 1 {
		return ClientEvent{}, false
	}
	e := ClientEvent{
		Type:        ClientEventType(ev._type),
		Reason:      int(ev.reason),
		Seq:         uint64(ev.seq),
		Count:       uint64(ev.count),
		Priority:    Priority(ev.priority),
		TTL:         time.Duration(ev.ttl),
		RetryAfter:  time.Duration(ev.retry_after),
		ID:          goBytes(ev.id, ev.idlen),
		CollapseKey: goBytes(ev.collapse_key, ev.collapse_keylen),
		ContentType: string(goBytes(ev.content_type, ev.content_typelen)),
		Payload:     goBytes(ev.payload, ev.payloadlen),
	}
	if e.Payload == nil && e.Type == ClientEventMessage {
		e.Payload = []byte{}
	}
	for i := 0; i < int(ev.nattrs) && i < MaxAttrs; i++ {
		a := &ev.attrs[i]
		e.Attrs = append(e.Attrs, Attr{
			Key:   string(goBytes(a.key, a.keylen)),
			Value: string(goBytes(a.value, a.valuelen)),
		})
	}
	*ev = C.tern_client_event{}
	return e, true
}

// Publish queues a PUBLISH of msg for the session target and returns its
// request number, which the answering ClientEventPuback carries in Seq.
// The server must allow the connection to publish (Conn.AllowPublish).
// Errors: ErrState (not connected), ErrFull (write and read, then retry),
// ErrTooLarge, ErrNoMem, ErrClosed, ErrInvalid.
func (c *Client) Publish(target string, msg *Message) (uint64, error) {
	return c.publish(0, target, msg)
}

// PublishTopic is Publish to the topic target.
func (c *Client) PublishTopic(topic string, msg *Message) (uint64, error) {
	return c.publish(C.TERN_CLIENT_PUBLISH_TOPIC, topic, msg)
}

func (c *Client) publish(flags C.uint32_t, target string, msg *Message) (uint64, error) {
	if err := c.lock("client publish"); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	defer c.wake()
	var err error
	c.buf, err = packMsg(c.buf[:0], &c.sc.msg, target, msg, false, "client publish")
	if err != nil {
		return 0, err
	}
	var req C.uint64_t
	rc := C.go_client_publish(c.p, flags, &c.sc.msg, bufPtr(c.buf), bufPtr(msg.Payload), &req, c.now())
	if rc != 0 {
		return 0, newError(rc, "client publish")
	}
	return uint64(req), nil
}

// SaveState returns the resume state (session key, epoch, last processed
// seq, remembered ids) to persist with the app's data, so that a new
// process resumes the stream (tern_client_save_state).
func (c *Client) SaveState() ([]byte, error) {
	if err := c.lock("save state"); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	n := C.tern_client_save_state(c.p, nil, 0)
	if n < 0 {
		return nil, newErrorSize(n, "save state")
	}
	buf := make([]byte, int(n)+1)
	m := C.tern_client_save_state(c.p, (*C.uint8_t)(&buf[0]), C.size_t(len(buf)))
	if m < 0 {
		return nil, newErrorSize(m, "save state")
	}
	return buf[:m], nil
}

// RestoreState loads a state saved by a client of the same session key,
// before the first Connect. Errors: ErrProto (not a state), ErrInvalid
// (another key's), ErrState (connected already), ErrNoMem.
func (c *Client) RestoreState(state []byte) error {
	if err := c.lock("restore state"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	var p *C.uint8_t
	if len(state) > 0 {
		p = (*C.uint8_t)(&state[0])
	}
	return newError(C.tern_client_restore_state(c.p, p, C.size_t(len(state)), c.now()), "restore state")
}

// ClientStats are the client's counters since NewClient.
type ClientStats struct {
	Received          uint64        // MSG frames
	Delivered         uint64        // message events taken by the app
	Duplicates        uint64        // MSG frames dropped by dedup
	Gaps              uint64        // messages reported lost
	Resyncs           uint64        // stream restarts
	Reconnects        uint64        // connects after the first
	AcksSent          uint64        // ACK frames
	RTT               time.Duration // last PING/PONG round trip
	HeartbeatInterval time.Duration // in use now
}

// Stats returns the client's statistics (zero once released).
func (c *Client) Stats() ClientStats {
	if c.lock("client stats") != nil {
		return ClientStats{}
	}
	defer c.mu.Unlock()
	var st C.tern_client_stats
	C.tern_client_get_stats(c.p, &st, C.sizeof_tern_client_stats)
	return ClientStats{
		Received: uint64(st.received), Delivered: uint64(st.delivered),
		Duplicates: uint64(st.duplicates), Gaps: uint64(st.gaps),
		Resyncs: uint64(st.resyncs), Reconnects: uint64(st.reconnects),
		AcksSent: uint64(st.acks_sent), RTT: time.Duration(st.rtt),
		HeartbeatInterval: time.Duration(st.heartbeat_interval),
	}
}
