package tern_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

const hookSecret = "s3cret"

// hookHub is a hub on a fake clock with its wall clock set to a known
// time, so that request timestamps are known.
func hookHub(t *testing.T) (*tern.Hub, *fakeClock, time.Time) {
	t.Helper()
	clk := newFakeClock()
	h := newHub(t, func(o *tern.Options) { o.Clock = clk.Now })
	wall := time.Unix(1700000000, 0)
	if err := h.SetWallclock(wall); err != nil {
		t.Fatal(err)
	}
	return h, clk, wall
}

func addHook(t *testing.T, h *tern.Hub, o tern.HookOptions) *tern.Hook {
	t.Helper()
	if o.Target == "" {
		o.Target = "https://example.test/hook"
	}
	if o.Secret == nil {
		o.Secret = []byte(hookSecret)
	}
	k, err := h.AddHook(o)
	if err != nil {
		t.Fatalf("AddHook: %v", err)
	}
	return k
}

func enqueue(t *testing.T, k *tern.Hook, e tern.HookEntry) {
	t.Helper()
	if err := k.Enqueue(e); err != nil {
		t.Fatalf("Enqueue(%+v): %v", e, err)
	}
}

func nextRequest(t *testing.T, h *tern.Hub) *tern.HookRequest {
	t.Helper()
	r, ok := h.NextHookRequest()
	if !ok {
		t.Fatal("no hook request due")
	}
	return r
}

func hookInfo(t *testing.T, k *tern.Hook) tern.HookInfo {
	t.Helper()
	in, err := k.Info()
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return in
}

// goSignature is the X-Tern-Signature a receiver computes with crypto/hmac.
func goSignature(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestHookRegister(t *testing.T) {
	h, _, _ := hookHub(t)
	if hs := h.Hooks(); len(hs) != 0 {
		t.Fatalf("hooks %v", hs)
	}
	a := addHook(t, h, tern.HookOptions{Verified: true})
	b := addHook(t, h, tern.HookOptions{Target: "https://example.test/b"})
	if a.ID() == 0 || b.ID() <= a.ID() {
		t.Fatalf("ids %d %d", a.ID(), b.ID())
	}
	hs := h.Hooks()
	if len(hs) != 2 || hs[0].ID() != a.ID() || hs[1].ID() != b.ID() {
		t.Fatalf("Hooks %v", hs)
	}
	in := hookInfo(t, a)
	if in.ID != a.ID() || !in.Verified || in.Disabled || in.Target != "https://example.test/hook" ||
		in.Queued != 0 || in.Outstanding != 0 || in.Delivered != 0 || in.Failures != 0 {
		t.Fatalf("info %+v", in)
	}
	if hookInfo(t, b).Verified {
		t.Fatal("b is challenged first")
	}
	if k, err := h.Hook(a.ID()); err != nil || k.ID() != a.ID() {
		t.Fatalf("Hook(id): %v %v", k, err)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("Remove twice: %v", err)
	}
	if _, err := a.Info(); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("Info of a removed hook: %v", err)
	}
	if _, err := h.Hook(a.ID()); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("Hook(removed): %v", err)
	}
	if _, err := h.Hook(0); !errors.Is(err, tern.ErrNotFound) && !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Hook(0): %v", err)
	}
	if c := addHook(t, h, tern.HookOptions{}); c.ID() <= b.ID() {
		t.Fatal("a removed id was given again")
	}
	if tern.EventHookDropped.String() != "hook_dropped" || tern.HookChallenge.String() != "challenge" {
		t.Fatal("names")
	}
}

func TestHookBatchAndSignature(t *testing.T) {
	h, clk, wall := hookHub(t)
	k := addHook(t, h, tern.HookOptions{Verified: true, MaxItems: 2, Object: "user"})
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("a request with nothing queued")
	}
	enqueue(t, k, tern.HookEntry{Key: "u1", Fields: []string{"name", "picture"}, Time: 11,
		Data: json.RawMessage(`{"v": 1}`)})
	if exp, ok := h.Expiry(); !ok || exp != clk.Now()+5*time.Second {
		t.Fatalf("expiry %v %v: one entry is due after MaxDelay", exp, ok)
	}
	clk.Advance(time.Second)
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("sent before MaxItems or MaxDelay")
	}
	enqueue(t, k, tern.HookEntry{Key: "u2", Fields: []string{"friends"}, Time: 12})
	r := nextRequest(t, h)
	if r.Kind != tern.HookDelivery || r.Hook != k.ID() || r.Attempt != 1 || r.Entries != 2 ||
		r.Method != "POST" || r.Target != "https://example.test/hook" || r.Query != "" ||
		r.URL() != r.Target || r.Timestamp != wall.Unix()+1 {
		t.Fatalf("request %+v", r)
	}
	var body struct {
		Object   string
		Delivery string
		Entry    []map[string]interface{}
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	if body.Object != "user" || body.Delivery != strconv.FormatUint(r.Delivery, 10) ||
		len(body.Entry) != 2 || body.Entry[0]["id"] != "u1" || body.Entry[1]["id"] != "u2" ||
		body.Entry[0]["data"] == nil || body.Entry[1]["data"] != nil {
		t.Fatalf("body %s", r.Body)
	}
	ts := r.Header.Get("X-Tern-Timestamp")
	if ts != strconv.FormatInt(wall.Unix()+1, 10) || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("X-Tern-Delivery") != strconv.FormatUint(r.Delivery, 10) ||
		r.Header.Get("X-Tern-Attempt") != "1" {
		t.Fatalf("headers %v", r.Header)
	}
	sig := r.Header.Get("X-Tern-Signature")
	if !hmac.Equal([]byte(sig), []byte(goSignature(hookSecret, ts, r.Body))) {
		t.Fatalf("signature %s", sig)
	}
	if err := tern.CheckHookSignature([]byte(hookSecret), ts, sig, r.Body, wall.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("CheckHookSignature: %v", err)
	}
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("a second batch while one is in flight")
	}
	if err := h.HookDone(r, tern.HookAnswer{Status: 200}); err != nil {
		t.Fatal(err)
	}
	in := hookInfo(t, k)
	if in.Delivered != 2 || in.Queued != 0 || in.Outstanding != 0 || in.Attempts != 1 {
		t.Fatalf("info %+v", in)
	}
	if ev, ok := h.NextEvent(); ok {
		t.Fatalf("success queued an event: %+v", ev)
	}
	if err := h.HookDone(r, tern.HookAnswer{Status: 200}); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("answered twice: %v", err)
	}
}

func TestHook500ThenRetryAtTheBackoffDeadline(t *testing.T) {
	h, clk, _ := hookHub(t)
	k := addHook(t, h, tern.HookOptions{Verified: true, NoDelay: true, RetryBase: 2 * time.Second,
		RetryCap: time.Minute})
	enqueue(t, k, tern.HookEntry{Key: "k", Fields: []string{"f"}, Time: 1})
	first := nextRequest(t, h)
	start := clk.Now()
	if err := h.HookDone(first, tern.HookAnswer{Status: 500}); err != nil {
		t.Fatal(err)
	}
	if in := hookInfo(t, k); in.Outstanding != 1 {
		t.Fatalf("a retried batch stays outstanding: %+v", in)
	}
	due, ok := h.Expiry()
	if !ok || due < start || due > start+2*time.Second {
		t.Fatalf("attempt 1 waits within [0, RetryBase]: due %v (now %v)", due, start)
	}
	if due > start {
		clk.Advance(due - start - 1)
		if _, ok := h.NextHookRequest(); ok {
			t.Fatal("retried before the deadline")
		}
		clk.Advance(1)
	}
	again := nextRequest(t, h)
	if again.Attempt != 2 || again.Delivery != first.Delivery || string(again.Body) != string(first.Body) ||
		again.Header.Get("X-Tern-Attempt") != "2" {
		t.Fatalf("retry %+v", again)
	}
	// No answer at all (a transport error) retries too.
	if err := h.HookDone(again, tern.HookAnswerFrom(nil, errors.New("connection refused"))); err != nil {
		t.Fatal(err)
	}
	due2, _ := h.Expiry()
	if due2 < clk.Now() || due2 > clk.Now()+4*time.Second {
		t.Fatalf("attempt 2 waits within [0, 2 RetryBase]: %v", due2)
	}
	clk.Advance(due2 - clk.Now())
	third := nextRequest(t, h)
	if third.Attempt != 3 || third.Delivery != first.Delivery {
		t.Fatalf("third %+v", third)
	}
	// Only Hook and Delivery are read.
	if err := h.HookDone(&tern.HookRequest{Hook: third.Hook, Delivery: third.Delivery},
		tern.HookAnswer{Status: 204}); err != nil {
		t.Fatal(err)
	}
	if in := hookInfo(t, k); in.Delivered != 1 || in.Outstanding != 0 || in.Attempts != 3 {
		t.Fatalf("info %+v", in)
	}
	if _, ok := h.Expiry(); ok {
		t.Fatal("a deadline left")
	}
}

func TestHook429RetryAfter(t *testing.T) {
	h, clk, _ := hookHub(t)
	k := addHook(t, h, tern.HookOptions{Verified: true, NoDelay: true})
	enqueue(t, k, tern.HookEntry{Key: "k"})
	r := nextRequest(t, h)
	if err := h.HookDone(r, tern.HookAnswer{Status: 429, RetryAfter: "120"}); err != nil {
		t.Fatal(err)
	}
	if due, _ := h.Expiry(); due != clk.Now()+120*time.Second {
		t.Fatalf("Retry-After 120: due %v, now %v", due, clk.Now())
	}
}

func TestHook400GivesUp(t *testing.T) {
	h, _, _ := hookHub(t)
	k := addHook(t, h, tern.HookOptions{Verified: true, NoDelay: true})
	enqueue(t, k, tern.HookEntry{Key: "a", Fields: []string{"f"}})
	enqueue(t, k, tern.HookEntry{Key: "b", Fields: []string{"f"}})
	r := nextRequest(t, h)
	if r.Entries != 2 {
		t.Fatalf("entries %d", r.Entries)
	}
	if err := h.HookDone(r, tern.HookAnswer{Status: 400, Body: []byte("bad request")}); err != nil {
		t.Fatal(err)
	}
	ev, ok := h.NextEvent()
	if !ok || ev.Type != tern.EventHookDropped || ev.Seq != k.ID() || ev.Cookie != r.Delivery ||
		ev.Count != 2 || ev.Reason != 400 || ev.Err() != nil {
		t.Fatalf("event %+v", ev)
	}
	if in := hookInfo(t, k); in.Dropped != 2 || in.Delivered != 0 || in.Outstanding != 0 || in.Failures != 1 {
		t.Fatalf("info %+v", in)
	}
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("a batch given up was sent again")
	}
}

func TestHookDisableAndEnable(t *testing.T) {
	h, clk, _ := hookHub(t)
	k := addHook(t, h, tern.HookOptions{Verified: true, NoDelay: true, MaxAttempts: 2, DisableAfter: 2,
		RetryCap: 10 * time.Second})
	for batch := 0; batch < 2; batch++ {
		enqueue(t, k, tern.HookEntry{Key: fmt.Sprintf("k%d", batch)})
		for attempt := 1; attempt <= 2; attempt++ {
			clk.Advance(time.Hour)
			r := nextRequest(t, h)
			if r.Attempt != attempt {
				t.Fatalf("attempt %d, want %d", r.Attempt, attempt)
			}
			if err := h.HookDone(r, tern.HookAnswer{Status: 503}); err != nil {
				t.Fatal(err)
			}
		}
		if ev, ok := h.NextEvent(); !ok || ev.Type != tern.EventHookDropped || ev.Reason != 503 {
			t.Fatalf("batch %d: %+v", batch, ev)
		}
	}
	ev, ok := h.NextEvent()
	if !ok || ev.Type != tern.EventHookDisabled || ev.Seq != k.ID() || ev.Count != 2 || ev.Cookie != 0 {
		t.Fatalf("event %+v", ev)
	}
	if !hookInfo(t, k).Disabled {
		t.Fatal("not disabled")
	}
	enqueue(t, k, tern.HookEntry{Key: "kept"})
	clk.Advance(time.Hour)
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("a disabled hook sent")
	}
	if _, ok := h.Expiry(); ok {
		t.Fatal("a disabled hook has a deadline")
	}
	if err := k.Enable(); err != nil {
		t.Fatal(err)
	}
	if in := hookInfo(t, k); in.Disabled || in.Failures != 0 || in.Queued != 1 {
		t.Fatalf("enabled: %+v", in)
	}
	r := nextRequest(t, h)
	if !strings.Contains(string(r.Body), `"kept"`) {
		t.Fatalf("body %s", r.Body)
	}
	if err := h.HookDone(r, tern.HookAnswer{Status: 200}); err != nil {
		t.Fatal(err)
	}
	if err := k.Enable(); err != nil {
		t.Fatalf("enabling an enabled hook: %v", err)
	}
}

func TestHookChallenge(t *testing.T) {
	h, _, _ := hookHub(t)
	k := addHook(t, h, tern.HookOptions{VerifyToken: "tok en&1", NoDelay: true})
	enqueue(t, k, tern.HookEntry{Key: "k"})
	r := nextRequest(t, h)
	if r.Kind != tern.HookChallenge || r.Method != "GET" || r.Body != nil ||
		!strings.Contains(r.Query, "hub.mode=subscribe") || r.URL() != r.Target+"?"+r.Query {
		t.Fatalf("challenge %+v", r)
	}
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("a delivery while unverified")
	}
	chal, err := tern.CheckHookChallenge(r.Query, "tok en&1")
	if err != nil || chal == "" {
		t.Fatalf("CheckHookChallenge: %q %v", chal, err)
	}
	if _, err := tern.CheckHookChallenge(r.Query, "wrong"); !errors.Is(err, tern.ErrProto) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := tern.CheckHookChallenge("hub.mode=unsubscribe&hub.challenge=a&hub.verify_token=", ""); !errors.Is(err, tern.ErrProto) {
		t.Fatalf("wrong mode: %v", err)
	}
	if _, err := tern.CheckHookChallenge("hub.mode=subscribe&hub.challenge=a", ""); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("missing token: %v", err)
	}
	if _, err := tern.CheckHookChallenge("", ""); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("empty query: %v", err)
	}
	// A wrong answer fails the challenge.
	if err := h.HookDone(r, tern.HookAnswer{Status: 200, Body: []byte("nope")}); err != nil {
		t.Fatal(err)
	}
	ev, ok := h.NextEvent()
	if !ok || ev.Type != tern.EventHookVerified || ev.Seq != k.ID() || !errors.Is(ev.Err(), tern.ErrProto) {
		t.Fatalf("event %+v (%v)", ev, ev.Err())
	}
	if err := k.Verify(); err != nil {
		t.Fatal(err)
	}
	r = nextRequest(t, h)
	chal, _ = tern.CheckHookChallenge(r.Query, "tok en&1")
	if err := h.HookDone(r, tern.HookAnswer{Status: 200, Body: []byte(chal)}); err != nil {
		t.Fatal(err)
	}
	if ev, ok := h.NextEvent(); !ok || ev.Type != tern.EventHookVerified || ev.Reason != 0 || ev.Err() != nil {
		t.Fatalf("event %+v", ev)
	}
	if !hookInfo(t, k).Verified {
		t.Fatal("not verified")
	}
	if r := nextRequest(t, h); r.Kind != tern.HookDelivery {
		t.Fatalf("after the challenge: %+v", r)
	}
	if err := k.Verify(); !errors.Is(err, tern.ErrState) {
		t.Fatalf("Verify with a batch out: %v", err)
	}
}

func TestCheckHookSignature(t *testing.T) {
	body := []byte(`{"object":"object","delivery":"1","entry":[]}`)
	ts := "1700000010"
	sig := goSignature(hookSecret, ts, body)
	now := time.Unix(1700000020, 0)
	sec := []byte(hookSecret)
	if err := tern.CheckHookSignature(sec, ts, sig, body, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := tern.CheckHookSignature(sec, ts, goSignature(hookSecret, ts, nil), nil, now, time.Minute); err != nil {
		t.Fatalf("empty body: %v", err)
	}
	for _, c := range []struct {
		name    string
		secret  []byte
		ts, sig string
		body    []byte
		now     time.Time
		tol     time.Duration
		want    error
	}{
		{"body changed", sec, ts, sig, append(body, ' '), now, time.Minute, tern.ErrProto},
		{"wrong secret", []byte("other"), ts, sig, body, now, time.Minute, tern.ErrProto},
		{"timestamp changed", sec, "1700000011", sig, body, now, time.Minute, tern.ErrProto},
		{"replayed later", sec, ts, sig, body, now.Add(time.Hour), 5 * time.Minute, tern.ErrState},
		{"from the future", sec, ts, sig, body, now.Add(-time.Hour), 5 * time.Minute, tern.ErrState},
		{"tolerance 5 s", sec, ts, sig, body, now, 5 * time.Second, tern.ErrState},
		{"malformed signature", sec, ts, sig[1:], body, now, time.Minute, tern.ErrInvalid},
		{"malformed timestamp", sec, "17x", sig, body, now, time.Minute, tern.ErrInvalid},
		{"empty header", sec, "", "", body, now, time.Minute, tern.ErrInvalid},
		{"no secret", nil, ts, sig, body, now, time.Minute, tern.ErrProto},
	} {
		err := tern.CheckHookSignature(c.secret, c.ts, c.sig, c.body, c.now, c.tol)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		var te *tern.Error
		if !errors.As(err, &te) || te.Op == "" {
			t.Errorf("%s: not a *tern.Error: %v", c.name, err)
		}
	}
}

func TestHookBadArguments(t *testing.T) {
	h, _, _ := hookHub(t)
	for _, c := range []struct {
		name string
		o    tern.HookOptions
		want error
	}{
		{"minimal", tern.HookOptions{Target: "-", Secret: []byte("s")}, nil},
		{"empty secret", tern.HookOptions{Target: "t", Secret: []byte{}}, tern.ErrInvalid},
		{"target too long", tern.HookOptions{Target: strings.Repeat("u", tern.MaxHookTarget+1), Secret: []byte("s")}, tern.ErrTooLarge},
		{"secret too long", tern.HookOptions{Target: "t", Secret: make([]byte, tern.MaxHookSecret+1)}, tern.ErrTooLarge},
		{"token too long", tern.HookOptions{Target: "t", Secret: []byte("s"), VerifyToken: strings.Repeat("x", tern.MaxHookSecret+1)}, tern.ErrTooLarge},
		{"object with a quote", tern.HookOptions{Target: "t", Secret: []byte("s"), Object: `a"b`}, tern.ErrInvalid},
		{"object with a NUL", tern.HookOptions{Target: "t", Secret: []byte("s"), Object: "a\x00b"}, tern.ErrInvalid},
		{"max bytes too small", tern.HookOptions{Target: "t", Secret: []byte("s"), MaxBytes: 10}, tern.ErrInvalid},
		{"cap below base", tern.HookOptions{Target: "t", Secret: []byte("s"), RetryBase: time.Minute, RetryCap: time.Second}, tern.ErrInvalid},
		{"too many in flight", tern.HookOptions{Target: "t", Secret: []byte("s"), MaxInflight: 5000}, tern.ErrInvalid},
	} {
		k, err := h.AddHook(c.o)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else {
				k.Remove()
			}
			continue
		}
		if !errors.Is(err, c.want) || k != nil {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := h.AddHook(tern.HookOptions{Secret: []byte("s")}); !errors.Is(err, tern.ErrInvalid) {
		t.Errorf("no target: %v", err)
	}
	if len(h.Hooks()) != 0 {
		t.Fatal("refused hooks left something")
	}

	k := addHook(t, h, tern.HookOptions{Verified: true, MaxQueued: 2})
	before := hookInfo(t, k)
	many := make([]string, tern.MaxHookFields+1)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	for _, c := range []struct {
		name string
		e    tern.HookEntry
		want error
	}{
		{"empty key", tern.HookEntry{}, tern.ErrInvalid},
		{"empty field", tern.HookEntry{Key: "k", Fields: []string{""}}, tern.ErrInvalid},
		{"key not UTF-8", tern.HookEntry{Key: "\xff"}, tern.ErrInvalid},
		{"data not JSON", tern.HookEntry{Key: "k", Data: []byte(`{"a":}`)}, tern.ErrInvalid},
		{"two JSON values", tern.HookEntry{Key: "k", Data: []byte("1 2")}, tern.ErrInvalid},
		{"field with a NUL", tern.HookEntry{Key: "k", Fields: []string{"a\x00b"}}, tern.ErrInvalid},
		{"key too long", tern.HookEntry{Key: strings.Repeat("k", tern.MaxHookKey+1)}, tern.ErrTooLarge},
		{"field too long", tern.HookEntry{Key: "k", Fields: []string{strings.Repeat("f", tern.MaxHookField+1)}}, tern.ErrTooLarge},
		{"too many fields", tern.HookEntry{Key: "k", Fields: many}, tern.ErrTooLarge},
	} {
		if err := k.Enqueue(c.e); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if after := hookInfo(t, k); after != before {
		t.Fatalf("refused entries changed the hook: %+v", after)
	}
	enqueue(t, k, tern.HookEntry{Key: "a"})
	enqueue(t, k, tern.HookEntry{Key: "b"})
	if err := k.Enqueue(tern.HookEntry{Key: "c"}); !errors.Is(err, tern.ErrFull) {
		t.Fatalf("MaxQueued: %v", err)
	}
	gone := &tern.Hook{}
	if err := gone.Enqueue(tern.HookEntry{Key: "k"}); err == nil {
		t.Fatal("a zero Hook enqueued")
	}

	r := &tern.HookRequest{Hook: k.ID(), Delivery: 12345}
	for _, status := range []int{99, 600, -1, 1 << 40, 1} {
		if err := h.HookDone(r, tern.HookAnswer{Status: status}); !errors.Is(err, tern.ErrInvalid) {
			t.Errorf("status %d: %v", status, err)
		}
	}
	if err := h.HookDone(r, tern.HookAnswer{Status: 200}); !errors.Is(err, tern.ErrNotFound) {
		t.Errorf("unknown delivery: %v", err)
	}
	if err := h.HookDone(nil, tern.HookAnswer{Status: 200}); !errors.Is(err, tern.ErrInvalid) {
		t.Errorf("nil request: %v", err)
	}
}

// A zero Hook belongs to no hub: its calls fail cleanly.
func TestHookZeroValue(t *testing.T) {
	var k tern.Hook
	if _, err := k.Info(); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Info of a zero Hook: %v", err)
	}
	var nilHook *tern.Hook
	for _, err := range []error{nilHook.Remove(), k.Enable(), k.Verify(), k.Enqueue(tern.HookEntry{Key: "k"})} {
		if !errors.Is(err, tern.ErrInvalid) {
			t.Fatalf("zero Hook: %v", err)
		}
	}
}

func TestHookClosedHub(t *testing.T) {
	h, _, _ := hookHub(t)
	k := addHook(t, h, tern.HookOptions{Verified: true})
	h.Close()
	if _, err := h.AddHook(tern.HookOptions{Target: "t", Secret: []byte("s")}); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("AddHook: %v", err)
	}
	for name, err := range map[string]error{
		"Info":     func() error { _, err := k.Info(); return err }(),
		"Enqueue":  k.Enqueue(tern.HookEntry{Key: "k"}),
		"Remove":   k.Remove(),
		"Enable":   k.Enable(),
		"Verify":   k.Verify(),
		"HookDone": h.HookDone(&tern.HookRequest{Hook: 1, Delivery: 1}, tern.HookAnswer{Status: 200}),
	} {
		if !errors.Is(err, tern.ErrClosed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, ok := h.NextHookRequest(); ok {
		t.Fatal("NextHookRequest on a closed hub")
	}
	if h.Hooks() != nil {
		t.Fatal("Hooks on a closed hub")
	}
}

func TestHookAddSetsTheWallClock(t *testing.T) {
	h := newHub(t, nil) // no SetWallclock, no store
	k := addHook(t, h, tern.HookOptions{Verified: true, NoDelay: true})
	enqueue(t, k, tern.HookEntry{Key: "k"})
	r := nextRequest(t, h)
	if d := time.Since(time.Unix(r.Timestamp, 0)); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("timestamp %d is not the wall clock", r.Timestamp)
	}
	if err := tern.CheckHookSignature([]byte(hookSecret), r.Header.Get("X-Tern-Timestamp"),
		r.Header.Get("X-Tern-Signature"), r.Body, time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestHookFileStoreRestart(t *testing.T) {
	dir := t.TempDir()
	fs, err := tern.OpenFileStore(dir, &tern.FileStoreOptions{Fsync: tern.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := tern.NewHub(nil)
	if err := h.SetStore(fs); err != nil {
		t.Fatal(err)
	}
	k := addHook(t, h, tern.HookOptions{Verified: true, Coalesce: true})
	enqueue(t, k, tern.HookEntry{Key: "k1", Fields: []string{"a"}, Time: 1})
	enqueue(t, k, tern.HookEntry{Key: "k2", Fields: []string{"b"}, Time: 2, Data: []byte(`"x"`)})
	enqueue(t, k, tern.HookEntry{Key: "k1", Fields: []string{"c"}, Time: 3})
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	h.Close()
	fs.Close()

	fs2, err := tern.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs2.Close()
	h2, _ := tern.NewHub(nil)
	defer h2.Close()
	if err := h2.SetStore(fs2); err != nil {
		t.Fatal(err)
	}
	hs := h2.Hooks()
	if len(hs) != 1 || hs[0].ID() != k.ID() {
		t.Fatalf("restored hooks %v", hs)
	}
	if in := hookInfo(t, hs[0]); in.Queued != 2 || !in.Verified {
		t.Fatalf("restored %+v", in)
	}
}

// TestHookOverHTTP runs the whole flow over net/http: an endpoint that
// answers the challenge and checks signatures, and a host loop that makes
// the hub's requests with http.Client.
func TestHookOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []string
	failOnce := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			chal, err := tern.CheckHookChallenge(r.URL.RawQuery, "tok")
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			io.WriteString(w, chal)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := tern.CheckHookSignature([]byte(hookSecret), r.Header.Get("X-Tern-Timestamp"),
			r.Header.Get("X-Tern-Signature"), body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failOnce {
			failOnce = false
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var b struct{ Entry []struct{ ID string } }
		json.Unmarshal(body, &b)
		for _, e := range b.Entry {
			got = append(got, e.ID)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	h := newHub(t, nil)
	k := addHook(t, h, tern.HookOptions{Target: srv.URL + "/cb", VerifyToken: "tok", NoDelay: true,
		RetryBase: time.Millisecond, RetryCap: 5 * time.Millisecond})
	for i := 0; i < 3; i++ {
		enqueue(t, k, tern.HookEntry{Key: fmt.Sprintf("obj%d", i), Fields: []string{"f"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out; got %v, info %+v", got, hookInfo(t, k))
		}
		r, ok := h.NextHookRequest()
		if !ok {
			time.Sleep(time.Millisecond)
			continue
		}
		req, err := r.NewHTTPRequest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.HookDone(r, tern.HookAnswerFrom(client.Do(req))); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != "obj0,obj1,obj2" {
		t.Fatalf("got %v", got)
	}
	ev, ok := h.NextEvent()
	if !ok || ev.Type != tern.EventHookVerified || ev.Err() != nil {
		t.Fatalf("event %+v", ev)
	}
	if in := hookInfo(t, k); !in.Verified || in.Delivered != 3 || in.Attempts != 3 {
		t.Fatalf("info %+v", in)
	}
}

// TestHookConcurrent feeds a hook from several goroutines while another
// makes the requests (go test -race).
func TestHookConcurrent(t *testing.T) {
	h := newHub(t, nil)
	k := addHook(t, h, tern.HookOptions{Verified: true, NoDelay: true, MaxInflight: 4, UnlimitedQueue: true})
	const producers, each = 4, 200
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := k.Enqueue(tern.HookEntry{Key: fmt.Sprintf("p%d-%d", p, i), Fields: []string{"f"}}); err != nil {
					t.Error(err)
					return
				}
			}
		}(p)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	delivered := 0
	deadline := time.Now().Add(20 * time.Second)
	for delivered < producers*each && time.Now().Before(deadline) {
		r, ok := h.NextHookRequest()
		if !ok {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err := h.HookDone(r, tern.HookAnswer{Status: 200}); err != nil {
			t.Fatal(err)
		}
		delivered += r.Entries
	}
	<-done
	if delivered != producers*each {
		t.Fatalf("delivered %d of %d", delivered, producers*each)
	}
}

// TestHookWaitAndRun: WaitHookRequest returns a batch when its MaxDelay
// passes, while Run drives the hub; Run does not spin while a request is
// due and not taken.
func TestHookWaitAndRun(t *testing.T) {
	h := newHub(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- h.Run(ctx) }()
	k := addHook(t, h, tern.HookOptions{Verified: true, MaxDelay: 30 * time.Millisecond})
	start := time.Now()
	enqueue(t, k, tern.HookEntry{Key: "k"})
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	r, err := h.WaitHookRequest(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Fatalf("returned after %v, before MaxDelay", d)
	}
	if r.Entries != 1 {
		t.Fatalf("request %+v", r)
	}
	// A retry due and not taken: Run must sleep, not spin.
	if err := h.HookDone(r, tern.HookAnswer{Status: 503}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the backoff is at most 1 s
	cpu0 := cpuTime()
	time.Sleep(300 * time.Millisecond)
	if used := cpuTime() - cpu0; used > 60*time.Millisecond {
		t.Fatalf("Run used %v of CPU in 300 ms with a hook request due", used)
	}
	r, err = h.WaitHookRequest(wctx)
	if err != nil || r.Attempt != 2 {
		t.Fatalf("retry %+v %v", r, err)
	}
	h.HookDone(r, tern.HookAnswer{Status: 200})
	// ctx and Close end the wait
	sctx, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer scancel()
	if _, err := h.WaitHookRequest(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with nothing due: %v", err)
	}
	go func() { time.Sleep(20 * time.Millisecond); h.Close() }()
	if _, err := h.WaitHookRequest(ctx); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("wait on a closed hub: %v", err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
