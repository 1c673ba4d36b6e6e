package tern

/*
#include "shim.h"
*/
import "C"

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"time"
)

// Priority is a message's priority. A connection sends HIGH before NORMAL
// before LOW; within one priority, publish order. The zero value is
// PriorityLow, as in C.
type Priority int

// The priorities.
const (
	PriorityLow    Priority = C.TERN_PRIO_LOW
	PriorityNormal Priority = C.TERN_PRIO_NORMAL
	PriorityHigh   Priority = C.TERN_PRIO_HIGH
)

// String returns "low", "normal" or "high".
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityNormal:
		return "normal"
	case PriorityHigh:
		return "high"
	}
	return "Priority(" + itoa(int64(p)) + ")"
}

// Overflow is what happens when a publish would push a session past its
// MaxPending messages or MaxPendingBytes.
type Overflow uint8

// The overflow rules.
const (
	// OverflowEvict evicts the oldest pending messages of the lowest
	// priority not above the new one until it fits.
	OverflowEvict Overflow = C.TERN_OVERFLOW_EVICT
	// OverflowRefuse refuses the new message (ErrFull, counted as
	// dropped for the session).
	OverflowRefuse Overflow = C.TERN_OVERFLOW_REFUSE
	// OverflowReject rejects the publish with a retry hint (ErrFull,
	// PublishResult.RetryAfter); the producer keeps the message.
	OverflowReject Overflow = C.TERN_OVERFLOW_REJECT
)

// Options configures a Hub (tern_settings). Start from DefaultOptions and
// change what you need; a zero field is passed to the library as zero, which
// means "off" or "unlimited" where tern_settings says so.
type Options struct {
	// MaxPayload is the largest payload accepted, in bytes. 1 MiB.
	MaxPayload int
	// MaxSessions bounds the number of sessions; 0 is unlimited.
	MaxSessions uint32
	// MaxConns bounds the connections of one session. 10.
	MaxConns uint32
	// InflightWindow is how many messages one connection may have sent and
	// not had acked. 256.
	InflightWindow uint32
	// MaxPending bounds the messages a session holds. 10000.
	MaxPending uint32
	// MaxPendingBytes bounds the payload bytes a session holds. 64 MiB.
	MaxPendingBytes int
	// Overflow is the overflow rule by priority of the incoming message.
	Overflow [3]Overflow
	// RetryAfter is the hint given with OverflowReject. 1 s.
	RetryAfter time.Duration
	// DefaultTTL applies to messages published with TTL 0; 0 never
	// expires them.
	DefaultTTL time.Duration
	// HeartbeatInterval: a connection that sent nothing this long sends a
	// heartbeat. 4 s.
	HeartbeatInterval time.Duration
	// LivenessTimeout: a binary connection silent this long is dead. 7 s.
	LivenessTimeout time.Duration
	// MaxHeartbeat caps the heartbeat interval a client may ask for. 5 min.
	MaxHeartbeat time.Duration
	// SessionTTL: a session without connections is deleted after this
	// long. 24 h.
	SessionTTL time.Duration
	// DedupWindow: an id published twice to a session within it is
	// refused with ErrDuplicate. 2 min; 0 turns dedup off.
	DedupWindow time.Duration
	// AckTimeout: an unacked message on a live connection is sent again
	// after it (doubling). 0 re-sends only after the connection is lost.
	AckTimeout time.Duration
	// MaxDeliver: with AckTimeout, messages sent this often without an ack
	// are discarded (EventDead). 5; 0 is unlimited.
	MaxDeliver uint32
	// MaxEvents bounds the trace events queued. 65536.
	MaxEvents uint32
	// Seed feeds the hub's random generator (ids, epoch, jitter). 0 draws
	// a seed from crypto/rand.
	Seed uint64
	// Trace emits lifecycle events for every message, not only those
	// published with Message.Trace.
	Trace bool
	// HelloAccept makes every HELLO wait for Conn.Accept or Conn.GoAway
	// after its EventConnHello.
	HelloAccept bool
	// MaxPoolBytes bounds the message pool's kept slabs. 1 MiB; 0 turns
	// the pool off.
	MaxPoolBytes int
	// TopicRate paces topic fan-out, in messages per second over the hub;
	// 0 does not pace.
	TopicRate uint32
	// TopicBurst is the pacing bucket's size; 0 takes TopicRate.
	TopicBurst uint32
	// AcceptRate flattens reconnect storms: at most this many HELLOs a
	// second (in a bucket of AcceptBurst) are welcomed into their
	// sessions; past it a HELLO is welcomed, then sent away with GOAWAY
	// LIMIT and a retry hint up to AcceptMaxRetry (Stats.AcceptsDeferred).
	// 0 (default) admits every HELLO.
	AcceptRate uint32
	// AcceptBurst is the accept bucket's size; 0 takes AcceptRate.
	AcceptBurst uint32
	// AcceptMaxRetry is the longest retry hint of a deferred HELLO, at
	// most 24 h. 30 s.
	AcceptMaxRetry time.Duration
	// Clock is the hub's time source; nil takes MonotonicClock.
	Clock Clock
}

// DefaultOptions returns the library's defaults (tern_settings_default).
func DefaultOptions() Options {
	var s C.tern_settings
	C.tern_settings_default_versioned(C.TERN_SETTINGS_VERSION, &s)
	o := Options{
		MaxPayload:        int(s.max_payload),
		MaxSessions:       uint32(s.max_sessions),
		MaxConns:          uint32(s.max_conns),
		InflightWindow:    uint32(s.inflight_window),
		MaxPending:        uint32(s.max_pending),
		MaxPendingBytes:   int(s.max_pending_bytes),
		RetryAfter:        time.Duration(s.retry_after),
		DefaultTTL:        time.Duration(s.default_ttl),
		HeartbeatInterval: time.Duration(s.heartbeat_interval),
		LivenessTimeout:   time.Duration(s.liveness_timeout),
		MaxHeartbeat:      time.Duration(s.max_heartbeat),
		SessionTTL:        time.Duration(s.session_ttl),
		DedupWindow:       time.Duration(s.dedup_window),
		AckTimeout:        time.Duration(s.ack_timeout),
		MaxDeliver:        uint32(s.max_deliver),
		MaxEvents:         uint32(s.max_events),
		Trace:             s.trace != 0,
		HelloAccept:       s.hello_accept != 0,
		MaxPoolBytes:      int(s.max_pool_bytes),
		TopicRate:         uint32(s.topic_rate),
		TopicBurst:        uint32(s.topic_burst),
		AcceptRate:        uint32(s.accept_rate),
		AcceptBurst:       uint32(s.accept_burst),
		AcceptMaxRetry:    time.Duration(s.accept_max_retry),
	}
	for i := range o.Overflow {
		o.Overflow[i] = Overflow(s.overflow[i])
	}
	return o
}

func (o *Options) toC() (C.tern_settings, error) {
	var s C.tern_settings
	C.tern_settings_default_versioned(C.TERN_SETTINGS_VERSION, &s)
	if o.MaxPayload < 0 || o.MaxPendingBytes < 0 || o.MaxPoolBytes < 0 {
		return s, errOp(C.TERN_ERR_INVALID, "new hub", "negative size")
	}
	s.max_payload = C.size_t(o.MaxPayload)
	s.max_sessions = C.uint32_t(o.MaxSessions)
	s.max_conns = C.uint32_t(o.MaxConns)
	s.inflight_window = C.uint32_t(o.InflightWindow)
	s.max_pending = C.uint32_t(o.MaxPending)
	s.max_pending_bytes = C.size_t(o.MaxPendingBytes)
	for i, v := range o.Overflow {
		s.overflow[i] = C.uint8_t(v)
	}
	s.retry_after = durToC(o.RetryAfter)
	s.default_ttl = durToC(o.DefaultTTL)
	s.heartbeat_interval = durToC(o.HeartbeatInterval)
	s.liveness_timeout = durToC(o.LivenessTimeout)
	s.max_heartbeat = durToC(o.MaxHeartbeat)
	s.session_ttl = durToC(o.SessionTTL)
	s.dedup_window = durToC(o.DedupWindow)
	s.ack_timeout = durToC(o.AckTimeout)
	s.max_deliver = C.uint32_t(o.MaxDeliver)
	s.max_events = C.uint32_t(o.MaxEvents)
	seed := o.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	s.seed = C.uint64_t(seed)
	s.trace = cbool(o.Trace)
	s.hello_accept = cbool(o.HelloAccept)
	s.max_pool_bytes = C.size_t(o.MaxPoolBytes)
	s.topic_rate = C.uint32_t(o.TopicRate)
	s.topic_burst = C.uint32_t(o.TopicBurst)
	s.accept_rate = C.uint32_t(o.AcceptRate)
	s.accept_burst = C.uint32_t(o.AcceptBurst)
	s.accept_max_retry = durToC(o.AcceptMaxRetry)
	return s, nil
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err == nil {
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
	return uint64(time.Now().UnixNano()) | 1
}

func cbool(b bool) C.uint32_t {
	if b {
		return 1
	}
	return 0
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
