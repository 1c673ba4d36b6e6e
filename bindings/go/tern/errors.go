package tern

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"strconv"
)

// Error is an error of the C library: its code (a negative tern_error) and
// the operation that returned it. errors.Is matches it against the
// sentinels (ErrInvalid, ErrFull, ...) by code.
type Error struct {
	// Code is the tern_error code, such as -505 for TERN_ERR_FULL.
	Code int
	// Op names the call that failed, such as "publish".
	Op string
	// Detail, when not empty, is more text from the library (the file
	// store's system error, say).
	Detail string
}

// Error returns "tern: OP: DESCRIPTION[: DETAIL]".
func (e *Error) Error() string {
	s := "tern: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	s += C.GoString(C.tern_strerror(C.int(e.Code)))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, tern.ErrFull) holds for every full-queue error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Fatal reports whether the code always means that the connection which
// returned it is finished (tern_err_is_fatal).
func (e *Error) Fatal() bool {
	return C.tern_err_is_fatal(C.int(e.Code)) != 0
}

// The sentinel errors, one per tern_error code. Compare with errors.Is.
var (
	// ErrInvalid: an argument is missing, out of range or malformed.
	ErrInvalid error = &Error{Code: C.TERN_ERR_INVALID}
	// ErrNoMem: the allocator failed; the call changed nothing.
	ErrNoMem error = &Error{Code: C.TERN_ERR_NOMEM}
	// ErrTooLarge: a key, id, payload, attribute or frame is over its limit.
	ErrTooLarge error = &Error{Code: C.TERN_ERR_TOO_LARGE}
	// ErrDuplicate: the message id was published to the session within the
	// dedup window (or a topic of that name exists).
	ErrDuplicate error = &Error{Code: C.TERN_ERR_DUPLICATE}
	// ErrFull: the session's queue is full and its overflow rule refused
	// or rejected the message.
	ErrFull error = &Error{Code: C.TERN_ERR_FULL}
	// ErrNotFound: the named session, topic, message or subscription does
	// not exist.
	ErrNotFound error = &Error{Code: C.TERN_ERR_NOT_FOUND}
	// ErrProto: the peer broke the protocol; the connection is closed.
	ErrProto error = &Error{Code: C.TERN_ERR_PROTO}
	// ErrClosed: the connection (or client, hub, store) is closed.
	ErrClosed error = &Error{Code: C.TERN_ERR_CLOSED}
	// ErrStore: the store failed.
	ErrStore error = &Error{Code: C.TERN_ERR_STORE}
	// ErrLimit: a count limit was reached (max_sessions, max_conns).
	ErrLimit error = &Error{Code: C.TERN_ERR_LIMIT}
	// ErrState: the call is not valid in the object's current state.
	ErrState error = &Error{Code: C.TERN_ERR_STATE}
)

// ErrBackpressure is returned by Conn.Write with a short count when a
// producer connection owes as many PUBACKs as it holds room for: keep the
// bytes not consumed and pass them again after the connection's next
// output was written.
var ErrBackpressure = errors.New("tern: connection owes PUBACKs; write its output, then pass the rest again")

// newError wraps a negative C code; 0 and positive values give nil.
func newError(code C.int, op string) error {
	if code >= 0 {
		return nil
	}
	return &Error{Code: int(code), Op: op}
}

func newErrorSize(code C.tern_ssize, op string) error {
	if code >= 0 {
		return nil
	}
	return &Error{Code: int(code), Op: op}
}

// errOp is a Go-side argument error with the C library's code.
func errOp(code int, op, detail string) error {
	return &Error{Code: code, Op: op, Detail: detail}
}

// SyntaxError is a bad topic pattern or filter text: where, and why. It
// unwraps to ErrInvalid or ErrTooLarge.
type SyntaxError struct {
	// Pos is the byte offset of the error in the text.
	Pos int
	// Msg is the library's English description, when it gives one.
	Msg string
	// Err is ErrInvalid or ErrTooLarge.
	Err error
}

// Error returns "tern: syntax error at byte POS: MSG".
func (e *SyntaxError) Error() string {
	s := "tern: syntax error at byte " + strconv.Itoa(e.Pos)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns ErrInvalid or ErrTooLarge.
func (e *SyntaxError) Unwrap() error { return e.Err }
