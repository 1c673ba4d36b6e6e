package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// sseEvent is one event read off the stream.
type sseEvent struct {
	id, event, data string
}

// readEvents reads SSE events from a response body into a channel.
func readEvents(body *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

func post(t *testing.T, url, body string) map[string]interface{} {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]interface{}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
	return out
}

func subscribe(t *testing.T, ctx context.Context, base, session, lastID string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events?session="+session, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return readEvents(bufio.NewReader(resp.Body)), resp
}

// envelope is the JSON of an SSE message event (tern-web(7)).
type envelope struct {
	Seq  uint64 `json:"seq"`
	ID   string `json:"id"`
	Prio string `json:"prio"`
	Data string `json:"data"`
}

func TestSSEEndToEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := tern.DefaultOptions()
	o.HeartbeatInterval = time.Second
	o.LivenessTimeout = 2 * time.Second
	srv, err := NewServer(&o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, srv) }()
	base := "http://" + ln.Addr().String()
	epoch := srv.Hub.Epoch()

	sctx, scancel := context.WithCancel(context.Background())
	events, resp := subscribe(t, sctx, base, "alice", "")
	for i := 1; i <= 3; i++ {
		out := post(t, fmt.Sprintf("%s/publish?session=alice&id=m%d", base, i), fmt.Sprintf("hello %d", i))
		if out["id"] != fmt.Sprintf("m%d", i) {
			t.Fatalf("publish answer %v", out)
		}
	}
	var last sseEvent
	for i := 1; i <= 3; i++ {
		ev := next(t, events)
		var env envelope
		if ev.event != "msg" || json.Unmarshal([]byte(ev.data), &env) != nil {
			t.Fatalf("event %+v", ev)
		}
		if env.Seq != uint64(i) || env.ID != fmt.Sprintf("m%d", i) || env.Data != fmt.Sprintf("hello %d", i) ||
			ev.id != fmt.Sprintf("%d.%d", epoch, i) {
			t.Fatalf("event %d: %+v %+v", i, ev, env)
		}
		last = ev
	}
	// Ack the first two; the third stays in flight.
	if out := post(t, base+"/ack?session=alice&seq=2", ""); out["acked"] != float64(2) {
		t.Fatalf("ack answer %v", out)
	}
	// A heartbeat comment keeps the stream alive; the stream is still
	// there after it.
	time.Sleep(1200 * time.Millisecond)
	post(t, base+"/publish?session=alice&id=m4", "hello 4")
	ev := next(t, events)
	if !strings.Contains(ev.data, `"hello 4"`) {
		t.Fatalf("after a heartbeat: %+v", ev)
	}
	last = ev

	// The browser goes away and comes back with Last-Event-ID: what it
	// had is acked, the rest comes again.
	scancel()
	resp.Body.Close()
	post(t, base+"/publish?session=alice&id=m5", "hello 5")
	sctx2, scancel2 := context.WithCancel(context.Background())
	defer scancel2()
	events2, resp2 := subscribe(t, sctx2, base, "alice", last.id)
	defer resp2.Body.Close()
	ev = next(t, events2)
	var env envelope
	json.Unmarshal([]byte(ev.data), &env)
	if env.ID != "m5" {
		t.Fatalf("after resume: %+v", ev)
	}
	if out := post(t, fmt.Sprintf("%s/ack?session=alice&seq=%d", base, env.Seq), ""); out["acked"] != float64(1) {
		t.Fatalf("ack after resume %v", out)
	}

	hresp, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st tern.Stats
	json.NewDecoder(hresp.Body).Decode(&st)
	hresp.Body.Close()
	if st.Acked != 5 || st.Messages != 0 || st.Published != 5 {
		t.Fatalf("stats %+v", st)
	}

	// Bad requests map to HTTP errors.
	r, _ := http.Post(base+"/publish?session=", "text/plain", strings.NewReader("x"))
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("publish without a session: %s", r.Status)
	}
	r.Body.Close()
	r, _ = http.Post(base+"/ack?session=nobody&seq=1", "", nil)
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("ack of no session: %s", r.Status)
	}
	r.Body.Close()

	// Shutdown: the open stream gets a goaway event and ends.
	cancel()
	ev = next(t, events2)
	if ev.event != "goaway" || !strings.Contains(ev.data, `"restart"`) {
		t.Fatalf("at shutdown: %+v", ev)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return")
	}
}
