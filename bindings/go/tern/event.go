package tern

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"unsafe"
)

// EventType names a hub event (tern_event_type).
type EventType int

// The hub events. Trace events (Accepted, Sent, Acked, Expired, Collapsed,
// Evicted, Canceled) come only when tracing is on for the hub or the
// message, and may be shed; the others carry a duty for the host and are
// never shed.
const (
	EventAccepted       EventType = C.TERN_EV_ACCEPTED        // a message was queued
	EventSent           EventType = C.TERN_EV_SENT            // sent with Seq on Conn
	EventAcked          EventType = C.TERN_EV_ACKED           // acknowledged (Seq is its last seq)
	EventExpired        EventType = C.TERN_EV_EXPIRED         // discarded at its expiry
	EventCollapsed      EventType = C.TERN_EV_COLLAPSED       // replaced by the message Aux (its id)
	EventEvicted        EventType = C.TERN_EV_EVICTED         // evicted or refused by an overflow rule
	EventDead           EventType = C.TERN_EV_DEAD            // discarded after MaxDeliver sends
	EventConnHello      EventType = C.TERN_EV_CONN_HELLO      // a HELLO for SessionKey waits (token in Aux)
	EventConnDead       EventType = C.TERN_EV_CONN_DEAD       // Conn was silent past its liveness timeout
	EventConnClosed     EventType = C.TERN_EV_CONN_CLOSED     // Conn closed; Reason is a GoAwayReason
	EventSessionExpired EventType = C.TERN_EV_SESSION_EXPIRED // a session expired; Count messages lost
	EventPersisted      EventType = C.TERN_EV_PERSISTED       // a Sync message is durable (Reason 0) or failed
	EventStoreFailed    EventType = C.TERN_EV_STORE_FAILED    // a store batch failed; Reason is the error
	EventCanceled       EventType = C.TERN_EV_CANCELED        // removed by the host
	// EventFallback (a duty event): a message published with
	// Message.Fallback was not acked by then. MsgID is its id, SessionKey
	// its session, Aux its payload (see Event.Payload), Seq its last seq
	// (0: never sent), Count its sends so far, Cookie its cookie. The
	// message stays queued.
	EventFallback EventType = C.TERN_EV_FALLBACK

	// The web-hook events (duty events): Seq is the hook's id, Cookie the
	// delivery id (0 for EventHookDisabled).

	// EventHookDropped: a batch was given up; Count entries lost, Reason
	// the last HTTP status (0: no answer).
	EventHookDropped EventType = C.TERN_EV_HOOK_DROPPED
	// EventHookDisabled: Count batches in a row were given up; the hook
	// sends nothing until Hook.Enable.
	EventHookDisabled EventType = C.TERN_EV_HOOK_DISABLED
	// EventHookVerified: a challenge ended; Reason 0 (verified) or an
	// error code, ErrProto (a wrong answer, or a status that gives up) or
	// ErrLimit (no answer within MaxAttempts): see Event.Err.
	EventHookVerified EventType = C.TERN_EV_HOOK_VERIFIED
)

var eventNames = map[EventType]string{
	EventAccepted: "accepted", EventSent: "sent", EventAcked: "acked",
	EventExpired: "expired", EventCollapsed: "collapsed",
	EventEvicted: "evicted", EventDead: "dead", EventConnHello: "conn_hello",
	EventConnDead: "conn_dead", EventConnClosed: "conn_closed",
	EventSessionExpired: "session_expired", EventPersisted: "persisted",
	EventStoreFailed: "store_failed", EventCanceled: "canceled", EventFallback: "fallback",
	EventHookDropped: "hook_dropped", EventHookDisabled: "hook_disabled",
	EventHookVerified: "hook_verified",
}

// String returns the event's name, such as "conn_closed".
func (t EventType) String() string {
	if s, ok := eventNames[t]; ok {
		return s
	}
	return "EventType(" + itoa(int64(t)) + ")"
}

// Event is one hub event, copied out of the library's queue.
type Event struct {
	// Type names the event.
	Type EventType
	// Reason is a DropReason (Expired, Evicted, Dead), a GoAwayReason
	// (ConnDead, ConnClosed), 0 or an error code (Persisted,
	// StoreFailed, HookVerified), or an HTTP status (HookDropped).
	Reason int
	// Conn is the connection concerned, or nil (none, or deleted since).
	Conn *Conn
	// SessionKey is the session concerned.
	SessionKey string
	// MsgID is the message's id (message events).
	MsgID []byte
	// Aux is the newer id (Collapsed), the HELLO token (ConnHello) or the
	// message's payload (Fallback).
	Aux []byte
	// Seq is the message's last seq, the HELLO's last_seq (ConnHello),
	// the store batch (StoreFailed), or the hook's id (Hook* events).
	Seq uint64
	// Count is the number of messages a session still held
	// (SessionExpired), of entries lost (HookDropped), or of batches
	// given up in a row (HookDisabled).
	Count uint64
	// Cookie is the message's Message.Cookie (message events), or the
	// delivery id (HookDropped, HookVerified).
	Cookie uint64
	// Value is the expired session's SetSessionValue value
	// (SessionExpired).
	Value interface{}
}

// Payload returns the message's payload for EventFallback, else nil.
func (e *Event) Payload() []byte {
	if e.Type == EventFallback {
		return e.Aux
	}
	return nil
}

// Err returns the event's error for Persisted, StoreFailed and
// HookVerified, else nil.
func (e *Event) Err() error {
	if (e.Type == EventPersisted || e.Type == EventStoreFailed || e.Type == EventHookVerified) &&
		e.Reason < 0 {
		return &Error{Code: e.Reason, Op: e.Type.String()}
	}
	return nil
}

// goBytes copies n bytes of C memory at p into a new Go slice (nil for
// none).
func goBytes(p *C.uint8_t, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	b := make([]byte, int(n))
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	return b
}

// NextEvent takes the oldest queued event, and false when there is none.
// A host must take events: duty events (ConnClosed, ConnDead, ConnHello,
// SessionExpired, Dead, Persisted, StoreFailed) are never discarded.
func (h *Hub) NextEvent() (Event, bool) {
	s := h.s
	if s.lock("next event") != nil {
		return Event{}, false
	}
	defer s.mu.Unlock()
	return s.nextEvent()
}

func (s *hubState) nextEvent() (Event, bool) {
	ev := &s.sc.ev
	if C.tern_hub_next_event_versioned(s.p, C.TERN_EVENT_VERSION, ev) != 1 {
		return Event{}, false
	}
	e := Event{
		Type:       EventType(ev._type),
		Reason:     int(ev.reason),
		SessionKey: string(goBytes(ev.session_key, ev.session_keylen)),
		MsgID:      goBytes(ev.msg_id, ev.msg_idlen),
		Aux:        goBytes(ev.aux, ev.auxlen),
		Seq:        uint64(ev.seq),
		Count:      uint64(ev.count),
		Cookie:     uint64(ev.cookie),
	}
	if ev.conn != nil {
		e.Conn = s.conns[ev.conn]
	}
	if e.Type == EventSessionExpired {
		e.Value = s.takeValue(e.Cookie)
		e.Cookie = 0
	}
	*ev = C.tern_event{}
	return e, true
}

// WaitEvent returns the next event, waiting for one until ctx is done
// (ctx.Err()) or the hub is closed (ErrClosed).
func (h *Hub) WaitEvent(ctx context.Context) (Event, error) {
	s := h.s
	for {
		if err := s.lock("wait event"); err != nil {
			return Event{}, err
		}
		if e, ok := s.nextEvent(); ok {
			s.mu.Unlock()
			return e, nil
		}
		ch := s.waitChan()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-ch:
		}
	}
}

// DropReason says why a session lost messages (tern_drop_reason).
type DropReason int

// The drop reasons.
const (
	DropExpired   DropReason = C.TERN_DROP_EXPIRED   // their TTL passed
	DropOverflow  DropReason = C.TERN_DROP_OVERFLOW  // evicted or refused by a full queue
	DropDead      DropReason = C.TERN_DROP_DEAD      // sent MaxDeliver times without an ack
	DropRetention DropReason = C.TERN_DROP_RETENTION // a topic's retention passed the cursor
)
