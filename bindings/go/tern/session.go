package tern

/*
#include "shim.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// SessionInfo describes a session now (tern_session_info).
type SessionInfo struct {
	// Key is the session's key.
	Key string
	// Pending counts messages waiting to be sent.
	Pending int
	// Inflight counts messages sent and not acked.
	Inflight int
	// PendingBytes counts the payload bytes held.
	PendingBytes uint64
	// Conns counts the attached connections.
	Conns int
	// NextSeq is the seq the next message will carry.
	NextSeq uint64
	// Dropped counts messages lost before an ack, since creation.
	Dropped uint64
	// Expires is when, on the hub's clock, the session expires unless a
	// connection attaches; false while one is attached.
	Expires time.Duration
	// ExpiresSet says whether Expires is set.
	ExpiresSet bool
	// Value is what SetSessionValue attached, or nil.
	Value interface{}
}

// keyPtr packs key into the hub's buffer; the caller holds the lock.
func (s *hubState) keyPtr(key string) (*C.uint8_t, C.size_t) {
	s.buf = append(s.buf[:0], key...)
	return bufPtr(s.buf), C.size_t(len(key))
}

func (s *hubState) sessionInfo(sp *C.tern_session) SessionInfo {
	var in C.tern_session_info
	C.tern_session_get_info(sp, &in, C.sizeof_tern_session_info)
	info := SessionInfo{
		Key:          C.GoStringN((*C.char)(unsafe.Pointer(in.key)), C.int(in.keylen)),
		Pending:      int(in.pending),
		Inflight:     int(in.inflight),
		PendingBytes: uint64(in.pending_bytes),
		Conns:        int(in.nconns),
		NextSeq:      uint64(in.next_seq),
		Dropped:      uint64(in.dropped),
	}
	if uint64(in.expires) != tstampNone {
		info.Expires, info.ExpiresSet = time.Duration(in.expires), true
	}
	if v := uint64(C.go_session_value(sp)); v != 0 {
		info.Value = s.values[v]
	}
	return info
}

// Session describes the session key, or returns ErrNotFound.
func (h *Hub) Session(key string) (SessionInfo, error) {
	s := h.s
	if err := s.lock("session"); err != nil {
		return SessionInfo{}, err
	}
	defer s.mu.Unlock()
	k, n := s.keyPtr(key)
	sp := C.tern_hub_find_session(s.p, k, n)
	if sp == nil {
		return SessionInfo{}, errOp(C.TERN_ERR_NOT_FOUND, "session", "")
	}
	return s.sessionInfo(sp), nil
}

// SetSessionValue attaches v to the session key (its user record, say);
// SessionInfo.Value returns it, and so does the EventSessionExpired event
// of the session (Event.Value). The library keeps an integer handle, never
// the Go value. It is not stored: sessions restored from a store have
// none. Returns ErrNotFound when there is no such session.
func (h *Hub) SetSessionValue(key string, v interface{}) error {
	s := h.s
	if err := s.lock("set session value"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k, n := s.keyPtr(key)
	sp := C.tern_hub_find_session(s.p, k, n)
	if sp == nil {
		return errOp(C.TERN_ERR_NOT_FOUND, "set session value", "")
	}
	if old := uint64(C.go_session_value(sp)); old != 0 {
		delete(s.values, old)
	}
	var handle uint64
	if v != nil {
		s.nextVal++
		handle = s.nextVal
		s.values[handle] = v
	}
	C.go_session_set_value(sp, C.uint64_t(handle))
	return nil
}

// takeValue forgets the session's value handle and returns the value.
func (s *hubState) takeValue(handle uint64) interface{} {
	if handle == 0 {
		return nil
	}
	v := s.values[handle]
	delete(s.values, handle)
	return v
}

// DeleteSession ends the session key now, as if it had never been: its
// connections are told to go away (GoAwayReplaced), every message it holds
// is released unsent, its store records are deleted. Returns ErrNotFound
// when there is no such session.
func (h *Hub) DeleteSession(key string) error {
	s := h.s
	if err := s.lock("delete session"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k, n := s.keyPtr(key)
	var handle uint64
	if sp := C.tern_hub_find_session(s.p, k, n); sp != nil {
		handle = uint64(C.go_session_value(sp))
	}
	rc := C.tern_hub_delete_session(s.p, k, n, s.now())
	if rc == 0 {
		s.takeValue(handle)
	}
	s.after(true)
	return newError(rc, "delete session")
}

// PurgeSession removes the messages the session key holds and keeps the
// session; with unsentOnly, only those never sent. The receiver is not
// told. Returns the number removed, or ErrNotFound.
func (h *Hub) PurgeSession(key string, unsentOnly bool) (int, error) {
	s := h.s
	if err := s.lock("purge session"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	k, n := s.keyPtr(key)
	var flags C.uint32_t
	if unsentOnly {
		flags = C.TERN_PURGE_UNSENT
	}
	rc := C.tern_hub_purge_session(s.p, k, n, flags, s.now())
	s.after(false)
	if rc < 0 {
		return 0, newErrorSize(rc, "purge session")
	}
	return int(rc), nil
}

// Cancel removes the message id from the session key. sent says whether
// it had been sent at least once (the receiver may have it). Returns
// ErrNotFound when the session holds no message with that id.
func (h *Hub) Cancel(key string, id []byte) (sent bool, err error) {
	s := h.s
	if err := s.lock("cancel"); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	s.buf = append(append(s.buf[:0], key...), id...)
	p := bufPtr(s.buf)
	idp := (*C.uint8_t)(nil)
	if len(id) > 0 {
		idp = (*C.uint8_t)(unsafe.Pointer(&s.buf[len(key)]))
	}
	rc := C.tern_hub_cancel(s.p, p, C.size_t(len(key)), idp, C.size_t(len(id)), s.now())
	s.after(false)
	if rc < 0 {
		return false, newError(rc, "cancel")
	}
	return rc == 1, nil
}

// Ack acknowledges, out of band, every message up to seq on the stream
// that carried seq to the session key: the "ack" request of the web
// framings. Returns the number of messages acked; ErrNotFound (no such
// session) or ErrInvalid (seq 0, or one not sent yet).
func (h *Hub) Ack(key string, seq uint64) (int, error) {
	s := h.s
	if err := s.lock("ack"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	k, n := s.keyPtr(key)
	rc := C.tern_hub_ack(s.p, k, n, C.uint64_t(seq), s.now())
	s.after(false)
	if rc < 0 {
		return 0, newErrorSize(rc, "ack")
	}
	return int(rc), nil
}

// SessionIterator walks the hub's sessions (tern_hub_next_session): every
// session that exists from the first step to the last is returned once,
// whatever the host does in between.
type SessionIterator struct {
	h   *Hub
	it  C.tern_session_iter
	cur SessionInfo
}

// Sessions returns an iterator over the hub's sessions:
//
//	for it := hub.Sessions(); it.Next(); {
//		info := it.Session()
//	}
func (h *Hub) Sessions() *SessionIterator {
	return &SessionIterator{h: h}
}

// Next moves to the next session and reports whether there was one.
func (it *SessionIterator) Next() bool {
	s := it.h.s
	if s.lock("sessions") != nil {
		return false
	}
	defer s.mu.Unlock()
	sp := C.tern_hub_next_session(s.p, &it.it)
	if sp == nil {
		return false
	}
	it.cur = s.sessionInfo(sp)
	return true
}

// Session returns the session Next moved to.
func (it *SessionIterator) Session() SessionInfo { return it.cur }
