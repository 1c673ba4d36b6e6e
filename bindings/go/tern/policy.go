package tern

/*
#include "shim.h"
*/
import "C"

import "time"

// MaxCap is the largest Policy.CapCount.
const MaxCap = C.TERN_MAX_CAP

// Policy is a session's delivery policy (tern_policy): quiet hours and a
// frequency cap. Both hold NORMAL and LOW messages back, never drop them
// (a held message stays queued and may still expire at its TTL); HIGH
// messages always pass and do not count against the cap. The zero Policy
// has neither rule.
//
// Quiet hours read the hub's wall clock (Hub.SetWallclock; without it the
// hub's clock is taken to be the wall clock) moved to the session's local
// time by UTCOffset, or by the hub's zone callback for a Policy with a
// Zone (Hub.SetZoneCallback). Durations are whole seconds: a fraction of
// a second is refused with ErrInvalid.
type Policy struct {
	// QuietStart and QuietEnd are the quiet hours as times after local
	// midnight (0 to 24h-1s), from QuietStart up to but not including
	// QuietEnd; QuietStart > QuietEnd crosses midnight (22h to 8h).
	// Equal values: no quiet hours.
	QuietStart, QuietEnd time.Duration
	// UTCOffset is the session's local time minus UTC, within ±18 h:
	// 8*time.Hour for UTC+8.
	UTCOffset time.Duration
	// Zone, when not 0, names the session's time zone for the hub's zone
	// callback (Hub.SetZoneCallback), which then gives the offset instead
	// of UTCOffset; without a callback UTCOffset applies.
	Zone uint32
	// CapCount is at most this many NORMAL and LOW messages sent to the
	// session within any CapWindow; the rest wait. 0: no cap. At most
	// MaxCap.
	CapCount uint32
	// CapWindow is the cap's sliding window, required with CapCount.
	CapWindow time.Duration
}

// wholeSeconds converts d to seconds, refusing a fraction and values
// outside [lo, hi] seconds.
func wholeSeconds(d time.Duration, lo, hi int64, what string) (int64, error) {
	if d%time.Second != 0 {
		return 0, errOp(C.TERN_ERR_INVALID, "set policy", what+" is not whole seconds")
	}
	s := int64(d / time.Second)
	if s < lo || s > hi {
		return 0, errOp(C.TERN_ERR_INVALID, "set policy", what+" out of range")
	}
	return s, nil
}

func (p *Policy) toC() (C.tern_policy, error) {
	var cp C.tern_policy
	C.tern_policy_default_versioned(C.TERN_POLICY_VERSION, &cp)
	qs, err := wholeSeconds(p.QuietStart, 0, 86399, "quiet start")
	if err != nil {
		return cp, err
	}
	qe, err := wholeSeconds(p.QuietEnd, 0, 86399, "quiet end")
	if err != nil {
		return cp, err
	}
	off, err := wholeSeconds(p.UTCOffset, -64800, 64800, "UTC offset")
	if err != nil {
		return cp, err
	}
	if p.CapWindow < 0 {
		return cp, errOp(C.TERN_ERR_INVALID, "set policy", "negative cap window")
	}
	cp.quiet_start = C.uint32_t(qs)
	cp.quiet_end = C.uint32_t(qe)
	cp.utc_offset = C.int32_t(off)
	cp.zone = C.uint32_t(p.Zone)
	cp.cap_count = C.uint32_t(p.CapCount)
	cp.cap_window = durToC(p.CapWindow)
	return cp, nil
}

// SetPolicy sets the delivery policy of the session key, creating the
// session when it does not exist yet (as Publish would), and replacing
// its policy if it had one; messages the old policy held go out at once
// if the new one lets them. A Policy with neither quiet hours nor a cap
// removes it. The policy is not stored: set it again after a restart.
// Errors: ErrInvalid (empty key, a value out of range, CapCount over
// MaxCap or without CapWindow), ErrTooLarge (key), ErrLimit
// (MaxSessions), ErrNoMem; nothing changed then.
func (h *Hub) SetPolicy(key string, p Policy) error {
	cp, err := p.toC()
	if err != nil {
		return err
	}
	return h.setPolicy(key, &cp)
}

// ClearPolicy removes the policy of the session key (creating the
// session when it does not exist yet); what it held goes out at once.
func (h *Hub) ClearPolicy(key string) error {
	return h.setPolicy(key, nil)
}

func (h *Hub) setPolicy(key string, cp *C.tern_policy) error {
	s := h.s
	if err := s.lock("set policy"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k, n := s.keyPtr(key)
	// cp (nil: remove) is Go memory without Go pointers, which cgo
	// may read for the call.
	rc := C.tern_hub_set_policy(s.p, k, n, cp, s.now())
	s.after(true)
	return newError(rc, "set policy")
}
