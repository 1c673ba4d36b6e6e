package tern

/*
#cgo linux pkg-config: libtern-posix
#include "posix_shim.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// MaxTokenLen is the longest subscriber token TokenMake returns: 20
// digits of expiry, '.', 64 hex digits.
const MaxTokenLen = C.TERN_TOKEN_MAX

// TokenMake returns the subscriber token for the session (tern_token_make,
// libtern-posix): "E.H", where E is expiry in Unix seconds and H the hex
// HMAC-SHA256 under secret of the session, '.' and E. A receiver presents
// it (a HELLO token, a token= parameter) and the server checks it with
// TokenCheck; the server needs no state per token. It fails with
// ErrInvalid for an expiry before 1970-01-01T00:00:01Z. Safe from any
// goroutine.
func TokenMake(secret []byte, session string, expiry time.Time) (string, error) {
	e := expiry.Unix()
	if e < 1 {
		return "", errOp(C.TERN_ERR_INVALID, "token make", "expiry before the Unix epoch")
	}
	key := []byte(session)
	var out [C.TERN_TOKEN_MAX]C.char
	n := C.tern_token_make(&out[0], C.size_t(len(out)), bytesPtr(secret),
		C.size_t(len(secret)), bufPtr(key), C.size_t(len(key)), C.uint64_t(e))
	if n == 0 {
		return "", errOp(C.TERN_ERR_INVALID, "token make", "")
	}
	return C.GoStringN(&out[0], C.int(n)), nil
}

// TokenCheck checks a token made by TokenMake for the session at now
// (tern_token_check; the HMAC is compared in constant time). It returns
// nil for a valid token, an error matching ErrState for a well-made token
// whose expiry is not after now, and one matching ErrInvalid for a
// malformed token or one made for another session or secret. Safe from
// any goroutine.
func TokenCheck(token string, secret []byte, session string, now time.Time) error {
	t := []byte(token)
	key := []byte(session)
	rc := C.tern_token_check((*C.char)(bytesPtr(t)), C.size_t(len(t)), bytesPtr(secret),
		C.size_t(len(secret)), bufPtr(key), C.size_t(len(key)), C.uint64_t(unixSeconds(now)))
	switch rc {
	case 0:
		return nil
	case C.TERN_ERR_STATE:
		return errOp(int(rc), "token check", "expired")
	}
	return newError(rc, "token check")
}

// unixSeconds is t in Unix seconds, 0 for times before the epoch.
func unixSeconds(t time.Time) uint64 {
	if s := t.Unix(); s > 0 {
		return uint64(s)
	}
	return 0
}

// bytesPtr returns a pointer to b's bytes for a C call (nil when empty).
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
