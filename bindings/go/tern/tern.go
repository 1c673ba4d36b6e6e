// Package tern is the Go binding of libtern, an embeddable push-delivery
// engine. It wraps the one C implementation through cgo; nothing of the
// protocol is written again in Go.
//
// The library is sans-I/O: a Hub never opens a socket or reads a clock of
// its own accord. The host moves bytes: it gives a connection what the peer
// sent (Conn.Write, an io.Writer) and sends what the connection has for the
// peer (Conn.Fill, Conn.WriteTo, Conn.Pump; Conn.PeekOutput and
// Conn.Consume when the transport may take only part). Events come out of
// a queue (Hub.NextEvent, Hub.WaitEvent); C calls back into Go only where
// the host asks for it (Hub.SetZoneCallback, the Workers' callbacks).
//
// On Linux the package also wraps libtern-posix, the library's own I/O
// backend: Workers runs hubs on threads of their own, each an epoll loop
// serving receivers over TCP (and, with an HTTP handler, SSE, NDJSON,
// polls and WebSockets), with Publish from any goroutine; TokenMake and
// TokenCheck make and check subscriber tokens.
//
// Unlike the C API, every object of this package may be used from several
// goroutines: a Hub serialises the calls on it and on its connections and
// topics with one mutex, a Client with its own. Time comes from the Clock
// of the options (a monotonic clock by default), so Go callers pass no
// timestamps.
//
// Errors wrap the C error codes: errors.Is(err, tern.ErrFull) and the other
// sentinels work on every error the package returns, and errors.As gives
// the *Error with its code.
//
// Build: the package links libtern through pkg-config (libtern.pc), and on
// Linux libtern-posix (libtern-posix.pc); to use a build tree that is not
// installed, point PKG_CONFIG_PATH at its meson-uninstalled directory and
// LD_LIBRARY_PATH at its lib directory.
package tern

/*
#cgo pkg-config: libtern
#include "shim.h"
*/
import "C"

import (
	"time"
)

// Version is the version of this binding. It follows the C library's:
// binding 0.3.x wraps libtern 0.3.x.
const Version = "0.3.0"

// HeaderVersion is the version of the tern.h the binding was compiled
// against.
const HeaderVersion = C.TERN_VERSION

// LibraryVersion returns the version of the linked libtern, such as
// "0.3.0".
func LibraryVersion() string {
	return C.GoString(C.tern_version())
}

// LibraryVersionNum returns the linked library's version as 0xMMmmpp.
func LibraryVersionNum() uint32 {
	return uint32(C.tern_version_info(0))
}

// Limits of the library, in bytes or counts (tern.h).
const (
	MaxID          = C.TERN_MAX_ID           // longest message id
	MaxCollapseKey = C.TERN_MAX_COLLAPSE_KEY // longest collapse key
	MaxSessionKey  = C.TERN_MAX_SESSION_KEY  // longest session key
	MaxToken       = C.TERN_MAX_TOKEN        // longest HELLO token
	MaxAttrs       = C.TERN_MAX_ATTRS        // most attributes per message
	MaxAttrKey     = C.TERN_MAX_ATTR_KEY     // longest attribute key
	MaxAttrValue   = C.TERN_MAX_ATTR_VALUE   // longest attribute value
	MaxContentType = C.TERN_MAX_CONTENT_TYPE // longest content type
	MaxTopic       = C.TERN_MAX_TOPIC        // longest topic name or pattern
	MaxFilter      = C.TERN_MAX_FILTER       // longest filter text
)

// tstampNone is TERN_TSTAMP_NONE, "no deadline".
const tstampNone = ^uint64(0)

// A Clock returns the current time on a monotonic clock with any origin.
// It must never go backwards. The library counts in nanoseconds.
type Clock func() time.Duration

// clockBase is the origin of the default clock; one second is added so that
// no timestamp is 0.
var clockBase = time.Now()

// MonotonicClock is the default Clock: the time since the package was
// loaded (plus one second), read from Go's monotonic clock.
func MonotonicClock() time.Duration {
	return time.Since(clockBase) + time.Second
}

func tstamp(d time.Duration) C.tern_tstamp {
	if d < 0 {
		return 0
	}
	return C.tern_tstamp(d)
}

func durToC(d time.Duration) C.tern_duration {
	if d < 0 {
		return 0
	}
	return C.tern_duration(d)
}

// ShardOf returns which of nshards hubs owns the session key: a number in
// [0, nshards), stable across versions, platforms and processes
// (tern_shard_of(3)). nshards 0 or 1 gives 0.
func ShardOf(key string, nshards uint32) uint32 {
	if len(key) == 0 {
		return uint32(C.tern_shard_of(nil, 0, C.uint32_t(nshards)))
	}
	b := []byte(key)
	return uint32(C.tern_shard_of((*C.uint8_t)(&b[0]), C.size_t(len(b)), C.uint32_t(nshards)))
}
