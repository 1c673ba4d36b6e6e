package tern_test

import (
	"bytes"
	"fmt"
	"strings"

	"libtern.dev/bindings/go/tern"
)

// A hub, a Server-Sent Events stream for the session "alice", one message
// published, written out and acked.
func Example() {
	h, _ := tern.NewHub(nil)
	defer h.Close()
	conn, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "alice"})
	defer conn.Close()
	h.Publish("alice", &tern.Message{ID: []byte("m1"), Payload: []byte("hello")})
	var body bytes.Buffer
	conn.WriteTo(&body) // the response body: "id: EPOCH.1\nevent: msg\ndata: {...}\n\n"
	n, _ := h.Ack("alice", 1)
	fmt.Println(n, strings.Contains(body.String(), `"data":"hello"`))
	// Output: 1 true
}

// Publishing many messages in one call, the fast path.
func ExampleHub_PublishBatch() {
	h, _ := tern.NewHub(nil)
	defer h.Close()
	var b tern.Batch
	for i := 0; i < 3; i++ {
		b.Add(fmt.Sprintf("user-%d", i), &tern.Message{Payload: []byte("news")})
	}
	n, _ := h.PublishBatch(&b)
	fmt.Println(n, h.Stats().Sessions)
	// Output: 3 3
}

// Errors wrap the C codes: compare them with errors.Is.
func ExampleError() {
	h, _ := tern.NewHub(nil)
	defer h.Close()
	_, err := h.Session("nobody")
	fmt.Println(err)
	// Output: tern: session: not found
}
