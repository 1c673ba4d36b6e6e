package tern_test

import (
	"fmt"
	"time"

	"libtern.dev/bindings/go/tern"
)

// Workers serving receivers over TCP, with subscriber tokens checked on
// every HELLO, and an SSE endpoint on the same threads.
func ExampleWorkers() {
	secret := []byte("server secret")
	w, err := tern.NewWorkers(tern.WorkersOptions{Threads: 2,
		Authorize: func(session string, token []byte) bool {
			return tern.TokenCheck(string(token), secret, session, time.Now()) == nil
		},
		HTTP: func(r *tern.HTTPRequest) {
			q := r.Query()
			if tern.TokenCheck(q.Get("token"), secret, q.Get("session"), time.Now()) != nil {
				r.Error(401, "bad token")
				return
			}
			r.Stream(tern.StreamOptions{Framing: tern.FramingSSE, Key: q.Get("session")})
		}})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	addr, err := w.Listen("127.0.0.1", 0)
	if err != nil {
		panic(err)
	}
	web, err := w.ListenHTTP("127.0.0.1", 0)
	if err != nil {
		panic(err)
	}
	if err := w.Start(); err != nil {
		panic(err)
	}
	tok, _ := tern.TokenMake(secret, "alice", time.Now().Add(time.Hour))
	fmt.Println(addr.Port > 0, web.Port > 0, len(tok) > 0)
	w.Publish("alice", &tern.Message{Payload: []byte("hello")})
	// Output: true true true
}

// A zone callback from Go's time zone database.
func ExampleHub_SetZoneCallback() {
	h, _ := tern.NewHub(nil)
	defer h.Close()
	zones := map[uint32]*time.Location{1: time.FixedZone("UTC+2", 2*3600)}
	h.SetZoneCallback(func(zone uint32, wall time.Time) time.Duration {
		loc, ok := zones[zone]
		if !ok {
			return 0
		}
		_, off := wall.In(loc).Zone()
		return time.Duration(off) * time.Second
	})
	err := h.SetPolicy("alice", tern.Policy{QuietStart: 22 * time.Hour, QuietEnd: 8 * time.Hour, Zone: 1})
	fmt.Println(err)
	// Output: <nil>
}
