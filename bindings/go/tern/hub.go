package tern

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
)

// Hub owns sessions, messages, connections, topics, timers and events
// (tern_hub). Create it with NewHub and release it with Close. A Hub may be
// used from several goroutines: its calls, and those of its connections and
// topics, are serialised by one mutex.
//
// Keep the Hub reachable while its connections and topics are in use: a
// Hub that becomes unreachable is closed by a finalizer, as a safety net
// only.
type Hub struct {
	s *hubState
}

// hubState is what connections and topics share with their Hub. It holds
// no pointer to the Hub itself, so that the Hub's finalizer can run while
// connections are still referenced.
type hubState struct {
	mu    sync.Mutex
	p     *C.tern_hub // nil once closed
	clock Clock

	buf []byte        // packing area for keys and messages
	sc  *C.go_scratch // C memory: message, result, event, ready list

	conns   map[*C.tern_conn]*Conn
	topics  map[*C.tern_topic]*Topic
	waiters map[*Conn]struct{} // connections inside Wait or Pump
	values  map[uint64]interface{}
	nextVal uint64
	store   *FileStore
	zone    cgo.Handle // the zone callback (SetZoneCallback), 0 for none
	wallSet bool       // the hub has a wall clock (SetWallclock, SetStore)

	changed chan struct{} // closed at the next change, when not nil
	running bool          // Run is active
	armed   uint64        // the deadline Run sleeps until
	kick    chan struct{} // wakes Run when an earlier deadline appears
}

// NewHub creates a hub with options o (nil: DefaultOptions()). It returns
// ErrInvalid for options the library refuses (a zero limit where one is
// required, a liveness timeout not above the heartbeat interval).
func NewHub(o *Options) (*Hub, error) {
	if o == nil {
		d := DefaultOptions()
		o = &d
	}
	set, err := o.toC()
	if err != nil {
		return nil, err
	}
	var p *C.tern_hub
	if rc := C.tern_hub_new(&p, &set, nil); rc != 0 {
		return nil, newError(rc, "new hub")
	}
	sc := C.go_scratch_new()
	if sc == nil {
		C.tern_hub_del(p)
		return nil, errOp(C.TERN_ERR_NOMEM, "new hub", "")
	}
	s := &hubState{
		p:       p,
		sc:      sc,
		clock:   o.Clock,
		conns:   make(map[*C.tern_conn]*Conn),
		topics:  make(map[*C.tern_topic]*Topic),
		waiters: make(map[*Conn]struct{}),
		values:  make(map[uint64]interface{}),
		kick:    make(chan struct{}, 1),
		armed:   tstampNone,
	}
	if s.clock == nil {
		s.clock = MonotonicClock
	}
	h := &Hub{s: s}
	runtime.SetFinalizer(h, (*Hub).Close)
	return h, nil
}

// Close deletes the hub with every session, message, topic and connection
// it holds (tern_hub_del). Connections and topics of the hub return
// ErrClosed from then on. A file store attached with SetStore stays open:
// close it after the hub. Close is idempotent and returns nil.
func (h *Hub) Close() error {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	runtime.SetFinalizer(h, nil)
	return nil
}

func (s *hubState) closeLocked() {
	if s.p == nil {
		return
	}
	for cp, c := range s.conns {
		C.tern_conn_del(cp)
		c.p = nil
		c.signal()
	}
	for tp, t := range s.topics {
		t.p = nil
		delete(s.topics, tp)
	}
	s.conns = map[*C.tern_conn]*Conn{}
	C.tern_hub_del(s.p)
	s.p = nil
	s.dropZone()
	C.go_scratch_del(s.sc)
	s.sc = nil
	s.values = map[uint64]interface{}{}
	s.store = nil
	s.broadcast()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// now reads the hub's clock.
func (s *hubState) now() C.tern_tstamp {
	return tstamp(s.clock())
}

// lock locks the hub and fails with ErrClosed when it is closed.
func (s *hubState) lock(op string) error {
	s.mu.Lock()
	if s.p == nil {
		s.mu.Unlock()
		return errOp(C.TERN_ERR_CLOSED, op, "hub closed")
	}
	return nil
}

// broadcast wakes every goroutine waiting for a change (WaitEvent).
func (s *hubState) broadcast() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// waitChan returns a channel closed at the next change.
func (s *hubState) waitChan() <-chan struct{} {
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// after runs after every call that may have changed the hub: it wakes the
// connections that became writable (when some wait), the event waiters,
// and Run when an earlier deadline appeared. mayClose says the call may
// have closed connections quietly (with nothing left to write).
func (s *hubState) after(mayClose bool) {
	if len(s.waiters) > 0 {
		for {
			n := int(C.go_next_ready(s.p, &s.sc.ready[0], C.size_t(len(s.sc.ready))))
			for i := 0; i < n; i++ {
				if c := s.conns[s.sc.ready[i]]; c != nil {
					c.signal()
				}
			}
			if n < len(s.sc.ready) {
				break
			}
		}
		if mayClose {
			for c := range s.waiters {
				if C.tern_conn_is_closed(c.p) != 0 {
					c.signal()
				}
			}
		}
	}
	s.broadcast()
	if s.running {
		if exp := uint64(C.tern_hub_get_expiry(s.p)); exp < s.armed {
			s.armed = exp
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Now returns the hub's current time, from its Clock.
func (h *Hub) Now() time.Duration {
	return h.s.clock()
}

// Epoch returns the hub's epoch: a random value that changes whenever the
// hub starts without its previous state. 0 once closed.
func (h *Hub) Epoch() uint64 {
	s := h.s
	if s.lock("epoch") != nil {
		return 0
	}
	defer s.mu.Unlock()
	return uint64(C.tern_hub_get_epoch(s.p))
}

// Expiry returns the earliest time, on the hub's clock, at which the hub
// needs HandleExpiry, and false when it has no deadline.
func (h *Hub) Expiry() (time.Duration, bool) {
	s := h.s
	if s.lock("expiry") != nil {
		return 0, false
	}
	defer s.mu.Unlock()
	exp := uint64(C.tern_hub_get_expiry(s.p))
	if exp == tstampNone {
		return 0, false
	}
	return time.Duration(exp), true
}

// HandleExpiry runs every deadline that is due (heartbeats, liveness, TTLs,
// session expiry, ack timeouts, store batches). Run calls it; a host with
// its own loop calls it at Expiry. ErrNoMem means an event that may not
// be lost found no memory: call again.
func (h *Hub) HandleExpiry() error {
	s := h.s
	if err := s.lock("handle expiry"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	rc := C.tern_hub_handle_expiry(s.p, s.now())
	s.after(true)
	return newError(rc, "handle expiry")
}

// Run drives the hub's deadlines until ctx is done or the hub is closed:
// it calls HandleExpiry whenever a deadline is due, and wakes connections
// blocked in Wait or Pump. Run one per hub; it returns ctx.Err(), or nil
// once the hub is closed.
func (h *Hub) Run(ctx context.Context) error {
	s := h.s
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errOp(C.TERN_ERR_STATE, "run", "already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.p == nil {
			s.mu.Unlock()
			return nil
		}
		now := s.now()
		if C.tern_hub_get_expiry(s.p) <= now {
			C.tern_hub_handle_expiry(s.p, now)
			s.after(true)
		}
		if s.store != nil && s.store.fd >= 0 {
			C.tern_store_file_complete(s.store.p, s.p)
			s.after(false)
		}
		exp := uint64(C.tern_hub_get_expiry(s.p))
		hookDue := exp <= uint64(now) && C.tern_hub_next_hook(s.p, 0) != 0
		if hookDue {
			// HandleExpiry ran every deadline it runs: one still due is a
			// web hook's request, waiting for the host (NextHookRequest,
			// WaitHookRequest). Wake its waiters, and do not spin on it:
			// look again after hookPoll, kicked by nothing.
			s.broadcast()
			exp = 0
		}
		s.armed = exp
		storeFd := -1
		if s.store != nil {
			storeFd = s.store.fd
		}
		s.mu.Unlock()

		wait := time.Hour
		if hookDue {
			wait = hookPoll
		} else if exp != tstampNone {
			if exp <= uint64(now) {
				wait = 0
			} else if d := time.Duration(exp - uint64(now)); d < wait {
				wait = d
			}
		}
		if storeFd >= 0 && wait > 5*time.Millisecond {
			// The file store's sync thread completes batches on its own
			// time: look for them every few milliseconds.
			wait = 5 * time.Millisecond
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.kick:
		case <-timer.C:
		}
	}
}

// hookPoll is how often Run looks at the hub's deadlines while a web
// hook's request is due and not taken yet.
const hookPoll = 10 * time.Millisecond

// GoAwayAll tells every open connection to go away with reason (a restart
// or shutdown), each with a retry hint drawn from [0, maxRetry]; sessions
// with HIGH messages pending get the earliest hints. It returns the number
// of connections told. Each gets its end event (EventConnClosed).
func (h *Hub) GoAwayAll(reason GoAwayReason, maxRetry time.Duration) (int, error) {
	s := h.s
	if err := s.lock("goaway all"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	rc := C.tern_hub_goaway_all(s.p, C.uint32_t(reason), durToC(maxRetry), s.now())
	s.after(true)
	if rc < 0 {
		return 0, newError(rc, "goaway all")
	}
	return int(rc), nil
}

// Flush hands the waiting batch, if any, to the store (tern_hub_flush).
func (h *Hub) Flush() error {
	s := h.s
	if err := s.lock("flush"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	rc := C.tern_hub_flush(s.p)
	s.after(false)
	return newError(rc, "flush")
}

// Stats are the hub's counters since NewHub and gauges of what it holds
// now (tern_stats).
type Stats struct {
	Published       uint64 // messages accepted by a publish
	Duplicates      uint64 // publishes refused with ErrDuplicate
	Collapsed       uint64 // pending messages replaced by a newer one
	Evicted         uint64 // pending messages evicted by an overflow rule
	Refused         uint64 // publishes refused by an overflow rule
	Rejected        uint64 // publishes rejected by OverflowReject
	Expired         uint64 // messages discarded at their expiry
	Dead            uint64 // messages discarded after MaxDeliver sends
	Sent            uint64 // message frames written, re-sends included
	Resent          uint64 // of which re-sends
	Acked           uint64 // messages acknowledged
	DroppedNotices  uint64 // loss notices written
	SessionsCreated uint64 // sessions created
	SessionsExpired uint64 // sessions expired
	ConnsOpened     uint64 // connections that completed HELLO
	ConnsDead       uint64 // connections declared dead by liveness
	ProtoErrors     uint64 // connections closed for a protocol error
	EventsLost      uint64 // trace events discarded past MaxEvents
	BytesIn         uint64 // bytes given to connections
	BytesOut        uint64 // bytes written by connections
	Sessions        uint64 // gauge: sessions
	Conns           uint64 // gauge: connections
	Messages        uint64 // gauge: messages held
	MessageBytes    uint64 // gauge: payload bytes held
	Inflight        uint64 // gauge: messages in flight
	StoreBatches    uint64 // batches handed to the store
	SessionsDeleted uint64 // sessions deleted by DeleteSession
	Canceled        uint64 // messages removed by Cancel, PurgeSession, DeleteSession
	Topics          uint64 // gauge: topics
	Members         uint64 // gauge: subscriptions of a session to a topic
	TopicMessages   uint64 // gauge: messages retained in topic logs
	TopicBytes      uint64 // gauge: their payload bytes
	PolicyHolds     uint64 // times a session's policy started holding messages
	PolicyReleases  uint64 // times such a hold ended
	Fallbacks       uint64 // FALLBACK events (messages not acked by their fallback deadline)
	FallbackAcked   uint64 // of those, messages acked later
	AcceptsDeferred uint64 // HELLOs deferred by the accept rate
}

// Stats returns the hub's statistics (zero once closed).
func (h *Hub) Stats() Stats {
	s := h.s
	var st C.tern_stats
	if s.lock("stats") != nil {
		return Stats{}
	}
	C.tern_hub_get_stats(s.p, &st, C.sizeof_tern_stats)
	s.mu.Unlock()
	return Stats{
		Published: uint64(st.published), Duplicates: uint64(st.duplicates),
		Collapsed: uint64(st.collapsed), Evicted: uint64(st.evicted),
		Refused: uint64(st.refused), Rejected: uint64(st.rejected),
		Expired: uint64(st.expired), Dead: uint64(st.dead),
		Sent: uint64(st.sent), Resent: uint64(st.resent),
		Acked: uint64(st.acked), DroppedNotices: uint64(st.dropped_notices),
		SessionsCreated: uint64(st.sessions_created),
		SessionsExpired: uint64(st.sessions_expired),
		ConnsOpened:     uint64(st.conns_opened), ConnsDead: uint64(st.conns_dead),
		ProtoErrors: uint64(st.proto_errors), EventsLost: uint64(st.events_lost),
		BytesIn: uint64(st.bytes_in), BytesOut: uint64(st.bytes_out),
		Sessions: uint64(st.sessions), Conns: uint64(st.conns),
		Messages: uint64(st.messages), MessageBytes: uint64(st.message_bytes),
		Inflight: uint64(st.inflight), StoreBatches: uint64(st.store_batches),
		SessionsDeleted: uint64(st.sessions_deleted), Canceled: uint64(st.canceled),
		Topics: uint64(st.topics), Members: uint64(st.members),
		TopicMessages: uint64(st.topic_messages), TopicBytes: uint64(st.topic_bytes),
		PolicyHolds: uint64(st.policy_holds), PolicyReleases: uint64(st.policy_releases),
		Fallbacks: uint64(st.fallbacks), FallbackAcked: uint64(st.fallback_acked),
		AcceptsDeferred: uint64(st.accepts_deferred),
	}
}

// putBytes appends b to the hub's packing buffer and returns its offset.
func putBytes(buf []byte, b []byte) ([]byte, uint64) {
	off := uint64(len(buf))
	return append(buf, b...), off
}

// putString appends s to the packing buffer and returns its offset.
func putString(buf []byte, s string) ([]byte, uint64) {
	off := uint64(len(buf))
	return append(buf, s...), off
}

// bufPtr returns a pointer to the start of buf for C, which never keeps it.
func bufPtr(buf []byte) *C.uint8_t {
	if cap(buf) == 0 {
		return nil
	}
	return (*C.uint8_t)(&buf[:1][0])
}

// NextReady returns a connection that became writable since it was last
// returned, or nil (tern_hub_next_ready): for a host that drives its own
// loop instead of Conn.Wait or Conn.Pump, which take connections off the
// same list while they wait.
func (h *Hub) NextReady() *Conn {
	s := h.s
	if s.lock("next ready") != nil {
		return nil
	}
	defer s.mu.Unlock()
	for {
		cp := C.tern_hub_next_ready(s.p)
		if cp == nil {
			return nil
		}
		if c := s.conns[cp]; c != nil {
			return c
		}
	}
}

// SetWallclock tells the hub that the wall clock reads wall now, for the
// expiries it stores. SetStore calls it with time.Now(); call it again
// after the wall clock was stepped.
func (h *Hub) SetWallclock(wall time.Time) error {
	s := h.s
	if err := s.lock("set wallclock"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ns := wall.UnixNano()
	if ns <= 0 {
		return errOp(C.TERN_ERR_INVALID, "set wallclock", "time before 1970")
	}
	rc := C.tern_hub_set_wallclock(s.p, s.now(), C.uint64_t(ns))
	if rc == 0 {
		s.wallSet = true
	}
	return newError(rc, "set wallclock")
}
