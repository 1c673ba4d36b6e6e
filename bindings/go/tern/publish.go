package tern

/*
#include "shim.h"
*/
import "C"

import (
	"strings"
	"time"
)

// Attr is one key=value attribute of a message, matched by topic filters.
type Attr struct {
	Key   string
	Value string
}

// Message describes a message to publish. Everything it holds is copied
// by the publish call; the zero value is an empty LOW message with a
// generated id.
type Message struct {
	// ID is the dedup key (up to MaxID bytes); empty asks the hub to
	// generate one.
	ID []byte
	// CollapseKey (up to MaxCollapseKey bytes), optional: a newer message
	// with the same key replaces an older one not yet sent.
	CollapseKey []byte
	// Priority orders delivery: HIGH before NORMAL before LOW.
	Priority Priority
	// TTL is the lifetime from the publish; 0 takes Options.DefaultTTL.
	TTL time.Duration
	// Payload is binary-safe, up to Options.MaxPayload bytes.
	Payload []byte
	// ContentType (up to MaxContentType bytes) is optional.
	ContentType string
	// Attrs, up to MaxAttrs of them.
	Attrs []Attr
	// Trace asks for lifecycle events of this message.
	Trace bool
	// Sync, with a store, confirms the publish (EventPersisted) only once
	// the message is durable.
	Sync bool
	// Volatile messages are never stored.
	Volatile bool
	// Cookie is echoed in the message's events (Event.Cookie); the hub does
	// not interpret it.
	Cookie uint64
	// Fallback is the channel-fallback deadline: when the message is not
	// acknowledged this long after its publish, the hub queues an
	// EventFallback carrying it (MsgID, SessionKey, and Aux its payload)
	// so the host can hand it to another channel. The message stays
	// queued. 0 (the default): none. The deadline is not stored.
	Fallback time.Duration
}

// PublishOutcome is a set of bits saying what a publish did.
type PublishOutcome uint32

// The publish outcomes.
const (
	// Queued: the message was queued.
	Queued PublishOutcome = C.TERN_PUBLISH_QUEUED
	// Replaced: it replaced an older pending message with its collapse key.
	Replaced PublishOutcome = C.TERN_PUBLISH_REPLACED
	// Evicted: older messages were evicted to make room.
	Evicted PublishOutcome = C.TERN_PUBLISH_EVICTED
	// Refused: the queue was full and the message was refused (a loss).
	Refused PublishOutcome = C.TERN_PUBLISH_REFUSED
	// Rejected: the queue was full; retry after PublishResult.RetryAfter.
	Rejected PublishOutcome = C.TERN_PUBLISH_REJECTED
)

// PublishResult tells the producer what happened to a publish.
type PublishResult struct {
	// ID is the message id used, given or generated.
	ID []byte
	// Outcome says what the publish did.
	Outcome PublishOutcome
	// Evicted counts the messages evicted by this publish.
	Evicted int
	// RetryAfter is set with Rejected.
	RetryAfter time.Duration
}

// packMsg appends the message's fields to buf and describes them in *m.
// With inline false the payload is not copied: the caller passes it as the
// call's payload buffer (offset 0).
func packMsg(buf []byte, m *C.go_msg, key string, msg *Message, inline bool, op string) ([]byte, error) {
	if len(msg.Attrs) > MaxAttrs {
		return buf, errOp(C.TERN_ERR_TOO_LARGE, op, "more than MaxAttrs attributes")
	}
	*m = C.go_msg{}
	var off uint64
	buf, off = putString(buf, key)
	m.key_off, m.key_len = C.uint64_t(off), C.uint64_t(len(key))
	buf, off = putBytes(buf, msg.ID)
	m.id_off, m.id_len = C.uint64_t(off), C.uint64_t(len(msg.ID))
	buf, off = putBytes(buf, msg.CollapseKey)
	m.ck_off, m.ck_len = C.uint64_t(off), C.uint64_t(len(msg.CollapseKey))
	if inline {
		buf, off = putBytes(buf, msg.Payload)
		m.payload_off = C.uint64_t(off)
	}
	m.payload_len = C.uint64_t(len(msg.Payload))
	m.ct_off = C.GO_NONE
	if msg.ContentType != "" {
		if strings.IndexByte(msg.ContentType, 0) >= 0 {
			return buf, errOp(C.TERN_ERR_INVALID, op, "NUL in content type")
		}
		buf, off = putString(buf, msg.ContentType)
		buf = append(buf, 0)
		m.ct_off = C.uint64_t(off)
	}
	m.attrs_off = C.uint64_t(len(buf))
	for _, a := range msg.Attrs {
		if strings.IndexByte(a.Key, 0) >= 0 || strings.IndexByte(a.Value, 0) >= 0 {
			return buf, errOp(C.TERN_ERR_INVALID, op, "NUL in attribute")
		}
		buf = append(buf, a.Key...)
		buf = append(buf, 0)
		buf = append(buf, a.Value...)
		buf = append(buf, 0)
	}
	m.nattrs = C.uint32_t(len(msg.Attrs))
	m.priority = C.int32_t(msg.Priority)
	m.ttl = C.uint64_t(durToC(msg.TTL))
	m.cookie = C.uint64_t(msg.Cookie)
	m.fallback = C.uint64_t(durToC(msg.Fallback))
	var flags C.uint32_t
	if msg.Trace {
		flags |= C.TERN_MSG_TRACE
	}
	if msg.Sync {
		flags |= C.TERN_MSG_SYNC
	}
	if msg.Volatile {
		flags |= C.TERN_MSG_VOLATILE
	}
	m.flags = flags
	return buf, nil
}

func publishResult(r *C.tern_publish_result) PublishResult {
	return PublishResult{
		ID:         goBytes(&r.id[0], r.idlen),
		Outcome:    PublishOutcome(r.outcome),
		Evicted:    int(r.nevicted),
		RetryAfter: time.Duration(r.retry_after),
	}
}

// Publish queues msg for the session key (1..MaxSessionKey bytes),
// creating the session when it does not exist yet. The result is valid
// with a nil error and with ErrFull (its Outcome says which rule
// applied); with ErrDuplicate only its ID is set. Other errors: ErrInvalid,
// ErrTooLarge, ErrLimit (MaxSessions), ErrNoMem; nothing changed then.
func (h *Hub) Publish(key string, msg *Message) (PublishResult, error) {
	s := h.s
	if err := s.lock("publish"); err != nil {
		return PublishResult{}, err
	}
	defer s.mu.Unlock()
	var err error
	s.buf, err = packMsg(s.buf[:0], &s.sc.msg, key, msg, false, "publish")
	if err != nil {
		return PublishResult{}, err
	}
	s.sc.res = C.tern_publish_result{}
	rc := C.go_publish(s.p, &s.sc.msg, bufPtr(s.buf), bufPtr(msg.Payload), s.now(), &s.sc.res)
	s.after(false)
	if rc != 0 && rc != C.TERN_ERR_FULL && rc != C.TERN_ERR_DUPLICATE {
		return PublishResult{}, newError(rc, "publish")
	}
	return publishResult(&s.sc.res), newError(rc, "publish")
}

// KeyResult is the outcome of PublishMany for one session key.
type KeyResult struct {
	// Err is nil when the message was queued for the session, else what
	// Publish would have returned for it alone.
	Err error
	// Outcome says what the publish did for this session.
	Outcome PublishOutcome
	// Evicted counts the messages evicted from this session.
	Evicted int
}

// PublishMany queues msg once for every session of keys, the payload
// stored once and shared. It returns the number of sessions it was queued
// for, the result for the whole (the id every session got; the union of
// the outcomes) and one KeyResult per key. The error is non-nil only when
// nothing changed (ErrInvalid, ErrTooLarge, ErrNoMem).
func (h *Hub) PublishMany(keys []string, msg *Message) (int, PublishResult, []KeyResult, error) {
	s := h.s
	if err := s.lock("publish many"); err != nil {
		return 0, PublishResult{}, nil, err
	}
	defer s.mu.Unlock()
	var err error
	s.buf, err = packMsg(s.buf[:0], &s.sc.msg, "", msg, false, "publish many")
	if err != nil {
		return 0, PublishResult{}, nil, err
	}
	offs := make([]C.uint64_t, 2*len(keys)+1)
	for i, k := range keys {
		var off uint64
		s.buf, off = putString(s.buf, k)
		offs[2*i], offs[2*i+1] = C.uint64_t(off), C.uint64_t(len(k))
	}
	results := make([]C.tern_key_result, len(keys)+1)
	s.sc.res = C.tern_publish_result{}
	rc := C.go_publish_many(s.p, &offs[0], C.size_t(len(keys)), &s.sc.msg,
		bufPtr(s.buf), bufPtr(msg.Payload), s.now(), &results[0], &s.sc.res)
	s.after(false)
	if rc < 0 {
		return 0, PublishResult{}, nil, newErrorSize(rc, "publish many")
	}
	krs := make([]KeyResult, len(keys))
	for i := range krs {
		r := &results[i]
		krs[i] = KeyResult{
			Err:     newError(C.int(r.error), "publish many"),
			Outcome: PublishOutcome(r.outcome),
			Evicted: int(r.nevicted),
		}
	}
	return int(rc), publishResult(&s.sc.res), krs, nil
}

// Batch collects messages for Hub.PublishBatch, which publishes them all
// in one call into the library: the fast path for producers that publish
// many messages at once. A Batch is reusable (Reset) and allocates nothing
// once it has grown to its working size. It is not safe for concurrent
// use.
type Batch struct {
	buf     []byte
	msgs    []C.go_msg
	results []C.go_result
	done    bool
}

// Add appends a message for the session key; everything is copied.
// It fails only for what the C library cannot be told (more than MaxAttrs
// attributes, a NUL byte in a content type or attribute).
func (b *Batch) Add(key string, msg *Message) error {
	if b.done {
		b.Reset()
	}
	var m C.go_msg
	buf, err := packMsg(b.buf, &m, key, msg, true, "batch add")
	if err != nil {
		return err
	}
	b.buf = buf
	b.msgs = append(b.msgs, m)
	return nil
}

// Len returns the number of messages in the batch.
func (b *Batch) Len() int { return len(b.msgs) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	b.msgs = b.msgs[:0]
	b.results = b.results[:0]
	b.done = false
}

// Result returns what PublishBatch did with the i-th message: its outcome
// and nil, or the error Publish would have returned for it.
func (b *Batch) Result(i int) (PublishOutcome, error) {
	if !b.done || i < 0 || i >= len(b.results) {
		return 0, errOp(C.TERN_ERR_STATE, "batch result", "not published")
	}
	r := &b.results[i]
	return PublishOutcome(r.outcome), newError(C.int(r.error), "publish")
}

// PublishBatch publishes every message of b, in order, each as Publish
// would, and returns how many were queued. Per-message outcomes come from
// b.Result. The next Add starts a new batch.
func (h *Hub) PublishBatch(b *Batch) (int, error) {
	s := h.s
	if err := s.lock("publish batch"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := len(b.msgs)
	if cap(b.results) < n {
		b.results = make([]C.go_result, n)
	}
	b.results = b.results[:n]
	b.done = true
	if n == 0 {
		return 0, nil
	}
	q := C.go_publish_batch(s.p, &b.msgs[0], C.size_t(n), bufPtr(b.buf), s.now(), &b.results[0])
	s.after(false)
	return int(q), nil
}
