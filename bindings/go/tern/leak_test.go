package tern_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// rss returns the process's resident set size in bytes (Linux).
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestNoLeakOverLongLoop creates and closes every kind of native object
// thousands of times: the process must not grow with the count (a missed
// tern_*_del or C.free would add kilobytes per round).
func TestNoLeakOverLongLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	payload := make([]byte, 512)
	round := func() {
		h, err := tern.NewHub(nil)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingNDJSON, Key: "k"})
		for i := 0; i < 10; i++ {
			h.Publish("k", &tern.Message{Payload: payload, Attrs: []tern.Attr{{"a", "b"}}})
		}
		top, _ := h.CreateTopic("t", nil)
		h.Subscribe("k", "t", "a = b")
		top.Publish(&tern.Message{Payload: payload, Attrs: []tern.Attr{{"a", "b"}}})
		var b tern.Batch
		b.Add("k2", &tern.Message{Payload: payload})
		h.PublishBatch(&b)
		h.PublishMany([]string{"x", "y"}, &tern.Message{Payload: payload})
		out := make([]byte, 64<<10)
		c.Fill(out)
		h.Ack("k", 5)
		for {
			if _, ok := h.NextEvent(); !ok {
				break
			}
		}
		cl, _ := tern.NewClient("k", []byte("tok"), nil)
		cl.NextEvent()
		cl.SaveState()
		cl.Close()
		conn, _ := h.NewConn()
		conn.Close()
		// web hooks: a delivery retried and given up, a challenge, the
		// receiving side's checks, error paths
		hk, _ := h.AddHook(tern.HookOptions{Target: "http://127.0.0.1:9/cb", Secret: payload[:32],
			Verified: true, NoDelay: true, RetryBase: time.Nanosecond, RetryCap: time.Nanosecond})
		hk.Enqueue(tern.HookEntry{Key: "obj", Fields: []string{"a", "b"}, Data: []byte(`{"x":[1,2]}`)})
		if r, ok := h.NextHookRequest(); ok {
			tern.CheckHookSignature(payload[:32], r.Header.Get("X-Tern-Timestamp"),
				r.Header.Get("X-Tern-Signature"), r.Body, time.Now(), time.Minute)
			h.HookDone(r, tern.HookAnswer{Status: 503, RetryAfter: "1", Body: payload[:8]})
			time.Sleep(0)
			if r, ok := h.NextHookRequest(); ok {
				h.HookDone(r, tern.HookAnswer{Status: 400})
			}
		}
		hk.Enqueue(tern.HookEntry{Key: ""})
		hk.Info()
		ch, _ := h.AddHook(tern.HookOptions{Target: "http://127.0.0.1:9/v", Secret: payload[:8], VerifyToken: "t"})
		if r, ok := h.NextHookRequest(); ok {
			chal, _ := tern.CheckHookChallenge(r.Query, "t")
			h.HookDone(r, tern.HookAnswer{Status: 200, Body: []byte(chal)})
		}
		ch.Remove()
		h.Hooks()
		for {
			if _, ok := h.NextEvent(); !ok {
				break
			}
		}
		c.Close()
		h.Close()
	}
	for i := 0; i < 300; i++ {
		round()
	}
	runtime.GC()
	before := rss(t)
	for i := 0; i < 3000; i++ {
		round()
	}
	runtime.GC()
	after := rss(t)
	if grew := after - before; grew > 16<<20 {
		t.Fatalf("RSS grew by %d bytes over 3000 rounds", grew)
	}
}
