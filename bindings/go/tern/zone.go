package tern

/*
#include "shim.h"
*/
import "C"

import (
	"runtime/cgo"
	"time"
)

// A ZoneFunc gives the offset from UTC (local time minus UTC) of the time
// zone a Policy names with Zone — the host's own numbering — at the wall
// time wall. A typical one looks the zone up and asks Go's time package:
//
//	func(zone uint32, wall time.Time) time.Duration {
//		_, off := wall.In(locations[zone]).Zone()
//		return time.Duration(off) * time.Second
//	}
//
// The result is taken in whole seconds (a fraction is dropped); one
// outside ±18 hours counts as 0 (UTC).
type ZoneFunc func(zone uint32, wall time.Time) time.Duration

// SetZoneCallback sets the hub's time-zone callback
// (tern_hub_set_zone_callback) for the policies with a Zone, replacing the
// one set before; nil removes it, and such policies then use their
// UTCOffset. With a callback, daylight saving time needs no new SetPolicy:
// the hub asks again at least every 15 minutes of its clock while a session
// with a zone has quiet hours.
//
// fn runs synchronously inside the hub's calls that send or run deadlines
// (Publish, HandleExpiry, Run, Conn.Write, Conn.Fill and the like), on the
// goroutine that made the call, with the hub's mutex held: the calls are
// serialised, but fn must not call the hub, its connections or its topics
// (it would deadlock), and it should be quick. A panic in fn is recovered
// and counts as offset 0 (UTC): it cannot unwind through the C library.
func (h *Hub) SetZoneCallback(fn ZoneFunc) error {
	s := h.s
	if err := s.lock("set zone callback"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	var rc C.int
	var hd cgo.Handle
	if fn == nil {
		rc = C.go_hub_set_zone(s.p, 0)
	} else {
		hd = cgo.NewHandle(fn)
		rc = C.go_hub_set_zone(s.p, C.uintptr_t(hd))
	}
	if err := newError(rc, "set zone callback"); err != nil {
		if hd != 0 {
			hd.Delete()
		}
		return err
	}
	s.dropZone()
	s.zone = hd
	return nil
}

// dropZone releases the zone callback's handle (the C hub no longer
// refers to it, or is gone). Called with the mutex held.
func (s *hubState) dropZone() {
	if s.zone != 0 {
		s.zone.Delete()
		s.zone = 0
	}
}

// maxZoneOffset is tern_zone_fn's range, in seconds.
const maxZoneOffset = 64800

//export goTernZone
func goTernZone(h C.uintptr_t, zone C.uint32_t, wall C.int64_t) (off C.int32_t) {
	defer func() {
		if recover() != nil {
			off = 0
		}
	}()
	fn, ok := cgo.Handle(h).Value().(ZoneFunc)
	if !ok || fn == nil {
		return 0
	}
	sec := int64(fn(uint32(zone), time.Unix(int64(wall), 0)) / time.Second)
	if sec < -maxZoneOffset || sec > maxZoneOffset {
		return 0
	}
	return C.int32_t(sec)
}
