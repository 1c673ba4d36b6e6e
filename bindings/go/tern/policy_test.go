package tern_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// noon is 12:00:00 UTC on some day: the wall clock the policy tests give
// their hubs.
var noon = time.Unix(20000*86400+12*3600, 0)

// policyPair is a hub and a connected client sharing one fake clock.
func policyPair(t *testing.T, key string, edit func(*tern.Options)) (*tern.Hub, *tern.Conn, *tern.Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	h := newHub(t, func(o *tern.Options) {
		o.Clock = clk.Now
		if edit != nil {
			edit(o)
		}
	})
	if err := h.SetWallclock(noon); err != nil {
		t.Fatal(err)
	}
	conn, cl := connect(t, h, key, clk)
	return h, conn, cl, clk
}

func connect(t *testing.T, h *tern.Hub, key string, clk *fakeClock) (*tern.Conn, *tern.Client) {
	t.Helper()
	conn, err := h.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	co := tern.DefaultClientOptions()
	co.Clock = clk.Now
	co.AckEvery = 1
	cl, err := tern.NewClient(key, nil, &co)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	cl.NextEvent()
	if err := cl.Connect(); err != nil {
		t.Fatal(err)
	}
	shuttle(t, cl, conn)
	return conn, cl
}

// received moves bytes and returns the payloads the client got.
func received(t *testing.T, cl *tern.Client, conn *tern.Conn) []string {
	t.Helper()
	var got []string
	for {
		shuttle(t, cl, conn)
		n := 0
		for {
			ev, ok := cl.NextEvent()
			if !ok {
				break
			}
			n++
			if ev.Type == tern.ClientEventMessage {
				got = append(got, string(ev.Payload))
			}
		}
		if n == 0 {
			return got
		}
	}
}

// advance runs the clock forward in steps of a second, both sides' timers
// and the link with it; it returns the payloads received.
func advance(t *testing.T, h *tern.Hub, cl *tern.Client, conn *tern.Conn, clk *fakeClock, d time.Duration) []string {
	t.Helper()
	var got []string
	for ; d > 0; d -= time.Second {
		clk.Advance(time.Second)
		if err := h.HandleExpiry(); err != nil {
			t.Fatal(err)
		}
		if err := cl.HandleExpiry(); err != nil {
			t.Fatal(err)
		}
		got = append(got, received(t, cl, conn)...)
	}
	return got
}

func TestPolicyQuietHours(t *testing.T) {
	h, conn, cl, clk := policyPair(t, "k", nil)
	// quiet from 12:00:00 to 12:00:10 UTC
	if err := h.SetPolicy("k", tern.Policy{QuietStart: 12 * time.Hour,
		QuietEnd: 12*time.Hour + 10*time.Second}); err != nil {
		t.Fatal(err)
	}
	received(t, cl, conn)
	mustPublish(t, h, "k", &tern.Message{Payload: []byte("normal"), Priority: tern.PriorityNormal})
	mustPublish(t, h, "k", &tern.Message{Payload: []byte("low")})
	mustPublish(t, h, "k", &tern.Message{Payload: []byte("high"), Priority: tern.PriorityHigh})
	if got := received(t, cl, conn); strings.Join(got, ",") != "high" {
		t.Fatalf("during quiet hours: %q", got)
	}
	if st := h.Stats(); st.PolicyHolds != 1 || st.PolicyReleases != 0 {
		t.Fatalf("stats %+v", st)
	}
	if exp, ok := h.Expiry(); !ok || exp > clk.Now()+10*time.Second {
		t.Fatalf("expiry %v %v, now %v", exp, ok, clk.Now())
	}
	if got := advance(t, h, cl, conn, clk, 10*time.Second); strings.Join(got, ",") != "normal,low" {
		t.Fatalf("after quiet hours: %q", got)
	}
	if st := h.Stats(); st.PolicyReleases != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPolicyOffsetAndClear(t *testing.T) {
	h, conn, cl, _ := policyPair(t, "k", nil)
	// 20:00 local at UTC+8: quiet 19:00-21:00 holds
	if err := h.SetPolicy("k", tern.Policy{QuietStart: 19 * time.Hour, QuietEnd: 21 * time.Hour,
		UTCOffset: 8 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, h, "k", &tern.Message{Payload: []byte("m")})
	if got := received(t, cl, conn); len(got) != 0 {
		t.Fatalf("held: %q", got)
	}
	if err := h.ClearPolicy("k"); err != nil {
		t.Fatal(err)
	}
	if got := received(t, cl, conn); strings.Join(got, ",") != "m" {
		t.Fatalf("after ClearPolicy: %q", got)
	}
}

func TestPolicyCap(t *testing.T) {
	h, conn, cl, clk := policyPair(t, "k", nil)
	if err := h.SetPolicy("k", tern.Policy{CapCount: 2, CapWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"m0", "m1", "m2", "m3"} {
		mustPublish(t, h, "k", &tern.Message{Payload: []byte(p)})
	}
	mustPublish(t, h, "k", &tern.Message{Payload: []byte("h"), Priority: tern.PriorityHigh})
	got := received(t, cl, conn)
	if len(got) != 3 || !strings.Contains(strings.Join(got, ","), "h") {
		t.Fatalf("under the cap: %q", got)
	}
	if got := advance(t, h, cl, conn, clk, 58*time.Second); len(got) != 0 {
		t.Fatalf("before the window slid: %q", got)
	}
	if got := advance(t, h, cl, conn, clk, 3*time.Second); strings.Join(got, ",") != "m2,m3" {
		t.Fatalf("after the window slid: %q", got)
	}
}

func TestFallbackEvent(t *testing.T) {
	clk := newFakeClock()
	h := newHub(t, func(o *tern.Options) { o.Clock = clk.Now })
	mustPublish(t, h, "k", &tern.Message{ID: []byte("id1"), Payload: []byte("urgent"),
		Fallback: 5 * time.Second, Cookie: 9})
	for _, ok := h.NextEvent(); ok; _, ok = h.NextEvent() {
	}
	clk.Advance(5 * time.Second)
	if err := h.HandleExpiry(); err != nil {
		t.Fatal(err)
	}
	var fb []tern.Event
	for e, ok := h.NextEvent(); ok; e, ok = h.NextEvent() {
		if e.Type == tern.EventFallback {
			fb = append(fb, e)
		}
	}
	if len(fb) != 1 {
		t.Fatalf("fallback events %+v", fb)
	}
	e := fb[0]
	if string(e.MsgID) != "id1" || e.SessionKey != "k" || string(e.Payload()) != "urgent" ||
		e.Seq != 0 || e.Count != 0 || e.Cookie != 9 || e.Type.String() != "fallback" {
		t.Fatalf("fallback event %+v", e)
	}
	if st := h.Stats(); st.Fallbacks != 1 {
		t.Fatalf("stats %+v", st)
	}
	if (&tern.Event{Type: tern.EventSent, Aux: []byte("x")}).Payload() != nil {
		t.Fatal("Payload for another event")
	}
}

func TestAcceptRate(t *testing.T) {
	clk := newFakeClock()
	h := newHub(t, func(o *tern.Options) {
		o.Clock = clk.Now
		o.AcceptRate, o.AcceptBurst, o.AcceptMaxRetry = 1, 1, 2*time.Second
	})
	if o := tern.DefaultOptions(); o.AcceptRate != 0 || o.AcceptMaxRetry != 30*time.Second {
		t.Fatalf("defaults %+v", o)
	}
	c1, _ := connect(t, h, "a", clk)
	c2, cl2 := connect(t, h, "b", clk)
	if st := h.Stats(); st.AcceptsDeferred != 1 {
		t.Fatalf("stats %+v", st)
	}
	if c1.Closed() || !c2.Closed() {
		t.Fatalf("closed: %v %v", c1.Closed(), c2.Closed())
	}
	var last tern.ClientEvent
	for ev, ok := cl2.NextEvent(); ok; ev, ok = cl2.NextEvent() {
		last = ev
	}
	if last.Type != tern.ClientEventDisconnected || last.RetryAfter <= 0 || last.RetryAfter > 2*time.Second {
		t.Fatalf("deferred client %+v", last)
	}
}

func TestPolicyBadArguments(t *testing.T) {
	h := newHub(t, func(o *tern.Options) { o.MaxSessions = 1 })
	bad := []tern.Policy{
		{QuietStart: 24 * time.Hour, QuietEnd: time.Hour},
		{QuietStart: -time.Second},
		{QuietStart: time.Hour + time.Millisecond, QuietEnd: 2 * time.Hour},
		{UTCOffset: 18*time.Hour + time.Second},
		{CapCount: tern.MaxCap + 1, CapWindow: time.Second},
		{CapCount: 3},
		{CapCount: 1, CapWindow: -time.Second},
	}
	for _, p := range bad {
		if err := h.SetPolicy("k", p); !errors.Is(err, tern.ErrInvalid) {
			t.Errorf("SetPolicy(%+v): %v", p, err)
		}
	}
	if err := h.SetPolicy("", tern.Policy{CapCount: 1, CapWindow: time.Second}); !errors.Is(err, tern.ErrInvalid) {
		t.Errorf("empty key: %v", err)
	}
	if err := h.SetPolicy(strings.Repeat("x", tern.MaxSessionKey+1), tern.Policy{CapCount: 1, CapWindow: time.Second}); !errors.Is(err, tern.ErrTooLarge) {
		t.Errorf("long key: %v", err)
	}
	if err := h.SetPolicy("k", tern.Policy{CapCount: 1, CapWindow: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPolicy("other", tern.Policy{CapCount: 1, CapWindow: time.Second}); !errors.Is(err, tern.ErrLimit) {
		t.Errorf("max sessions: %v", err)
	}
	if err := h.SetPolicy("k", tern.Policy{}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := h.SetPolicy("k", tern.Policy{}); !errors.Is(err, tern.ErrClosed) {
		t.Errorf("closed hub: %v", err)
	}
	if err := h.ClearPolicy("k"); !errors.Is(err, tern.ErrClosed) {
		t.Errorf("closed hub: %v", err)
	}
}
