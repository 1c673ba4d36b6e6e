package tern_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

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
