package tern

/*
#include "shim.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// Topic is a store-once log for fan-out (tern_topic): a message published
// to it is kept once, and every subscribed session keeps a cursor into the
// log. Create it with Hub.CreateTopic; Delete removes it.
type Topic struct {
	s    *hubState
	p    *C.tern_topic // nil once deleted
	name string
}

// TopicOptions configures a topic. The zero value takes the library's
// defaults for every field (10000 messages, 64 MiB, no age limit, no
// pacing); set Unlimited fields explicitly with the Unlimited* flags.
type TopicOptions struct {
	// MaxMessages bounds the messages the log keeps; 0 takes 10000.
	MaxMessages uint32
	// UnlimitedMessages keeps any number of messages.
	UnlimitedMessages bool
	// MaxBytes bounds the payload bytes the log keeps; 0 takes 64 MiB.
	MaxBytes uint64
	// UnlimitedBytes keeps any number of bytes.
	UnlimitedBytes bool
	// MaxAge discards a message this long after its publish; 0 never.
	MaxAge time.Duration
	// Rate and Burst pace the topic's sends (messages per second, bucket
	// size); 0 does not pace.
	Rate  uint32
	Burst uint32
}

func (o *TopicOptions) toC() C.tern_topic_options {
	var t C.tern_topic_options
	C.tern_topic_options_default_versioned(C.TERN_TOPIC_OPTIONS_VERSION, &t)
	if o == nil {
		return t
	}
	if o.UnlimitedMessages {
		t.max_messages = 0
	} else if o.MaxMessages > 0 {
		t.max_messages = C.uint32_t(o.MaxMessages)
	}
	if o.UnlimitedBytes {
		t.max_bytes = 0
	} else if o.MaxBytes > 0 {
		t.max_bytes = C.uint64_t(o.MaxBytes)
	}
	t.max_age = durToC(o.MaxAge)
	t.rate = C.uint32_t(o.Rate)
	t.burst = C.uint32_t(o.Burst)
	return t
}

// cstrCheck reports whether str can be passed to C as a NUL-terminated
// string (it holds no NUL byte).
func cstrCheck(str string) bool {
	for i := 0; i < len(str); i++ {
		if str[i] == 0 {
			return false
		}
	}
	return true
}

// CreateTopic creates the topic name (a topic name: dotted segments,
// tern-filter(7)) with options o (nil: defaults). Sessions whose pattern
// subscriptions match it become members at once. When a topic of that name
// exists it returns that topic with ErrDuplicate.
func (h *Hub) CreateTopic(name string, o *TopicOptions) (*Topic, error) {
	s := h.s
	if err := s.lock("create topic"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if !cstrCheck(name) {
		return nil, errOp(C.TERN_ERR_INVALID, "create topic", "NUL in name")
	}
	opts := o.toC()
	s.buf = append(append(s.buf[:0], name...), 0)
	var tp *C.tern_topic
	rc := C.tern_hub_create_topic(s.p, (*C.char)(unsafe.Pointer(bufPtr(s.buf))), &opts, s.now(), &tp)
	s.after(false)
	if rc != 0 && !(rc == C.TERN_ERR_DUPLICATE && tp != nil) {
		return nil, newError(rc, "create topic")
	}
	return s.topic(tp, name), newError(rc, "create topic")
}

func (s *hubState) topic(tp *C.tern_topic, name string) *Topic {
	if t := s.topics[tp]; t != nil {
		return t
	}
	t := &Topic{s: s, p: tp, name: name}
	s.topics[tp] = t
	return t
}

// Topic returns the topic name, or ErrNotFound.
func (h *Hub) Topic(name string) (*Topic, error) {
	s := h.s
	if err := s.lock("topic"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if !cstrCheck(name) {
		return nil, errOp(C.TERN_ERR_NOT_FOUND, "topic", "")
	}
	s.buf = append(append(s.buf[:0], name...), 0)
	tp := C.tern_hub_find_topic(s.p, (*C.char)(unsafe.Pointer(bufPtr(s.buf))))
	if tp == nil {
		return nil, errOp(C.TERN_ERR_NOT_FOUND, "topic", "")
	}
	return s.topic(tp, name), nil
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

func (t *Topic) lock(op string) error {
	if err := t.s.lock(op); err != nil {
		return err
	}
	if t.p == nil {
		t.s.mu.Unlock()
		return errOp(C.TERN_ERR_CLOSED, op, "topic deleted")
	}
	return nil
}

// Publish appends msg to the topic's log and returns its offset. The
// message is stored once and shared with every member whose filter matches
// its attributes. Its id is not deduplicated and Sync is not supported
// (ErrInvalid).
func (t *Topic) Publish(msg *Message) (uint64, error) {
	if err := t.lock("topic publish"); err != nil {
		return 0, err
	}
	s := t.s
	defer s.mu.Unlock()
	var err error
	s.buf, err = packMsg(s.buf[:0], &s.sc.msg, "", msg, false, "topic publish")
	if err != nil {
		return 0, err
	}
	var off C.uint64_t
	rc := C.go_topic_publish(t.p, &s.sc.msg, bufPtr(s.buf), bufPtr(msg.Payload), s.now(), &off)
	s.after(false)
	if rc != 0 {
		return 0, newError(rc, "topic publish")
	}
	return uint64(off), nil
}

// Receipt is a topic message's read receipt.
type Receipt struct {
	Offset     uint64 // the message's offset
	Subscribed uint64 // members whose filter matched it when published
	Sent       uint64 // of those, members it was sent to at least once
	Acked      uint64 // members that acked it
}

// Receipt returns the read receipt of the message at offset, while the log
// retains it (else ErrNotFound).
func (t *Topic) Receipt(offset uint64) (Receipt, error) {
	if err := t.lock("receipt"); err != nil {
		return Receipt{}, err
	}
	defer t.s.mu.Unlock()
	var r C.tern_receipt
	rc := C.tern_topic_get_receipt(t.p, C.uint64_t(offset), &r, C.sizeof_tern_receipt)
	if rc != 0 {
		return Receipt{}, newError(rc, "receipt")
	}
	return Receipt{Offset: uint64(r.offset), Subscribed: uint64(r.subscribed),
		Sent: uint64(r.sent), Acked: uint64(r.acked)}, nil
}

// TopicInfo describes a topic now.
type TopicInfo struct {
	Name        string
	FirstOffset uint64 // oldest retained message; EndOffset if none
	EndOffset   uint64 // the offset the next message will get
	Messages    uint64 // retained
	Bytes       uint64 // their payload bytes
	Members     uint64 // subscribed sessions
}

// Info describes the topic (zero once deleted).
func (t *Topic) Info() TopicInfo {
	if t.lock("topic info") != nil {
		return TopicInfo{Name: t.name}
	}
	defer t.s.mu.Unlock()
	var in C.tern_topic_info
	C.tern_topic_get_info(t.p, &in, C.sizeof_tern_topic_info)
	return TopicInfo{Name: t.name, FirstOffset: uint64(in.first_offset),
		EndOffset: uint64(in.end_offset), Messages: uint64(in.messages),
		Bytes: uint64(in.bytes), Members: uint64(in.members)}
}

// Delete deletes the topic, its log and its members; messages already in
// flight stay in flight, and what a member lost and was not told yet is
// still told to its session. Pattern subscriptions stay. Idempotent.
func (t *Topic) Delete() error {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.p == nil || s.p == nil {
		t.p = nil
		return nil
	}
	delete(s.topics, t.p)
	C.tern_topic_del(t.p, s.now())
	t.p = nil
	s.after(false)
	return nil
}

// Subscribe subscribes the session key (created when it does not exist)
// to the topics matching pattern ("a.b", "a.*", "a.#"), with an optional
// filter over message attributes (tern-filter(7); "" for none). It returns
// the number of topics joined now. A bad pattern or filter gives a
// *SyntaxError; an exact name that is no topic ErrNotFound.
func (h *Hub) Subscribe(key, pattern, filter string) (int, error) {
	s := h.s
	if err := s.lock("subscribe"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if !cstrCheck(pattern) || !cstrCheck(filter) {
		return 0, errOp(C.TERN_ERR_INVALID, "subscribe", "NUL in pattern or filter")
	}
	s.buf = append(s.buf[:0], key...)
	s.buf = append(append(s.buf, pattern...), 0)
	s.buf = append(append(s.buf, filter...), 0)
	base := bufPtr(s.buf)
	pat := (*C.char)(unsafe.Add(unsafe.Pointer(base), len(key)))
	var fil *C.char
	if filter != "" {
		fil = (*C.char)(unsafe.Add(unsafe.Pointer(base), len(key)+len(pattern)+1))
	}
	errpos := C.size_t(^uint(0))
	rc := C.tern_hub_subscribe(s.p, base, C.size_t(len(key)), pat, fil, s.now(), &errpos)
	s.after(false)
	if rc < 0 {
		if rc == C.TERN_ERR_INVALID && errpos != C.size_t(^uint(0)) {
			return 0, &SyntaxError{Pos: int(errpos), Err: ErrInvalid}
		}
		return 0, newErrorSize(rc, "subscribe")
	}
	return int(rc), nil
}

// Unsubscribe ends the subscription of the session key made with pattern.
// What a member lost and was not told yet is still told to the session.
// It returns the number of memberships removed, or ErrNotFound.
func (h *Hub) Unsubscribe(key, pattern string) (int, error) {
	s := h.s
	if err := s.lock("unsubscribe"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if !cstrCheck(pattern) {
		return 0, errOp(C.TERN_ERR_INVALID, "unsubscribe", "NUL in pattern")
	}
	s.buf = append(s.buf[:0], key...)
	s.buf = append(append(s.buf, pattern...), 0)
	base := bufPtr(s.buf)
	pat := (*C.char)(unsafe.Add(unsafe.Pointer(base), len(key)))
	rc := C.tern_hub_unsubscribe(s.p, base, C.size_t(len(key)), pat, s.now())
	s.after(false)
	if rc < 0 {
		return 0, newErrorSize(rc, "unsubscribe")
	}
	return int(rc), nil
}

// CheckTopicPattern validates a topic name or pattern; a bad one gives a
// *SyntaxError (unwrapping to ErrInvalid) with the offset of the first bad
// byte.
func CheckTopicPattern(pattern string) error {
	b := []byte(pattern)
	var p *C.char
	if len(b) > 0 {
		p = (*C.char)(unsafe.Pointer(&b[0]))
	}
	var pos C.size_t
	if rc := C.tern_topic_pattern_check(p, C.size_t(len(b)), &pos); rc != 0 {
		return &SyntaxError{Pos: int(pos), Err: newError(rc, "topic pattern")}
	}
	return nil
}

// CheckFilter validates a filter text (tern-filter(7)); a bad one gives a
// *SyntaxError with the offset and the library's message, unwrapping to
// ErrInvalid (syntax) or ErrTooLarge (a limit).
func CheckFilter(text string) error {
	b := []byte(text)
	var p *C.char
	if len(b) > 0 {
		p = (*C.char)(unsafe.Pointer(&b[0]))
	}
	var pos C.size_t
	var msg *C.char
	if rc := C.tern_filter_check(p, C.size_t(len(b)), &pos, &msg); rc != 0 {
		e := &SyntaxError{Pos: int(pos), Err: newError(rc, "filter")}
		if msg != nil {
			e.Msg = C.GoString(msg)
		}
		return e
	}
	return nil
}
