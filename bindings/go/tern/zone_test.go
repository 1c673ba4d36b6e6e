package tern_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// The zone callback gives a Policy's offset: 20:00 at UTC+8 is inside
// quiet hours 19:00-21:00, noon UTC (the policy's own UTCOffset 0) is not.
func TestZoneCallback(t *testing.T) {
	h, conn, cl, clk := policyPair(t, "k", nil)
	var calls int32
	var gotZone uint32
	var gotWall time.Time
	var offset int64 = int64(8 * time.Hour)
	if err := h.SetZoneCallback(func(zone uint32, wall time.Time) time.Duration {
		atomic.AddInt32(&calls, 1)
		gotZone, gotWall = zone, wall
		return time.Duration(atomic.LoadInt64(&offset))
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPolicy("k", tern.Policy{QuietStart: 19 * time.Hour, QuietEnd: 21 * time.Hour,
		Zone: 7}); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, h, "k", &tern.Message{Payload: []byte("m")})
	if got := received(t, cl, conn); len(got) != 0 {
		t.Fatalf("held by the zone's quiet hours: %q", got)
	}
	if atomic.LoadInt32(&calls) == 0 || gotZone != 7 {
		t.Fatalf("calls %d, zone %d", calls, gotZone)
	}
	if d := gotWall.Sub(noon); d < 0 || d > time.Minute {
		t.Fatalf("wall %v, want about %v", gotWall, noon)
	}
	if st := h.Stats(); st.PolicyHolds != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The zone's offset changes (a move to UTC+1: 13:00, not quiet): the
	// hub asks again within 15 minutes and lets the message go.
	atomic.StoreInt64(&offset, int64(time.Hour))
	if got := advance(t, h, cl, conn, clk, 15*time.Minute+time.Second); strings.Join(got, ",") != "m" {
		t.Fatalf("after the offset changed: %q", got)
	}
}

// Without a callback, or with one that fails, a zone's policy uses its
// UTCOffset (the callback's failures count as UTC).
func TestZoneCallbackFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   tern.ZoneFunc
	}{
		{"none", nil},
		{"out of range", func(uint32, time.Time) time.Duration { return 19 * time.Hour }},
		{"panic", func(uint32, time.Time) time.Duration { panic("no such zone") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, conn, cl, _ := policyPair(t, "k", nil)
			if err := h.SetZoneCallback(func(uint32, time.Time) time.Duration { return 8 * time.Hour }); err != nil {
				t.Fatal(err)
			}
			if err := h.SetZoneCallback(tc.fn); err != nil { // replaces it
				t.Fatal(err)
			}
			// Quiet at 12:00 UTC, not at 20:00 UTC+8.
			if err := h.SetPolicy("k", tern.Policy{QuietStart: 11 * time.Hour, QuietEnd: 13 * time.Hour,
				Zone: 3}); err != nil {
				t.Fatal(err)
			}
			mustPublish(t, h, "k", &tern.Message{Payload: []byte("m")})
			if got := received(t, cl, conn); len(got) != 0 {
				t.Fatalf("not held at UTC: %q", got)
			}
			h.Close()
			if err := h.SetZoneCallback(nil); !errors.Is(err, tern.ErrClosed) {
				t.Fatalf("closed hub: %v", err)
			}
		})
	}
}

// The callback is called from hub calls made on several goroutines, one at
// a time (the race detector checks the unsynchronised counter).
func TestZoneCallbackSerialised(t *testing.T) {
	h, _, _, _ := policyPair(t, "k", nil)
	n := 0
	if err := h.SetZoneCallback(func(uint32, time.Time) time.Duration {
		n++
		return 0
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			key := string(rune('a' + g))
			for i := 0; i < 20; i++ {
				if err := h.SetPolicy(key, tern.Policy{QuietStart: time.Hour, QuietEnd: 2 * time.Hour, Zone: 1}); err != nil {
					t.Error(err)
					return
				}
				if _, err := h.Publish(key, &tern.Message{Payload: []byte("x")}); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	h.Close()
	if n == 0 {
		t.Fatal("never called")
	}
}
