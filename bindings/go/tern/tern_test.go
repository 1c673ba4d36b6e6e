package tern_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Second} }

func (c *fakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t += d
	c.mu.Unlock()
}

func newHub(t testing.TB, edit func(*tern.Options)) *tern.Hub {
	t.Helper()
	o := tern.DefaultOptions()
	o.Seed = 1
	if edit != nil {
		edit(&o)
	}
	h, err := tern.NewHub(&o)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func mustPublish(t testing.TB, h *tern.Hub, key string, m *tern.Message) tern.PublishResult {
	t.Helper()
	r, err := h.Publish(key, m)
	if err != nil {
		t.Fatalf("Publish(%q): %v", key, err)
	}
	return r
}

// drain fills everything a connection has now.
func drain(t testing.TB, c *tern.Conn) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil && !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("WriteTo: %v", err)
	}
	return b.String()
}

// shuttle moves bytes between a client and a hub connection until neither
// has anything to say.
func shuttle(t testing.TB, cl *tern.Client, conn *tern.Conn) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for i := 0; i < 100; i++ {
		moved := false
		n, err := cl.Fill(buf)
		if err != nil && !errors.Is(err, tern.ErrState) && !errors.Is(err, tern.ErrClosed) {
			t.Fatalf("client Fill: %v", err)
		}
		if n > 0 {
			moved = true
			if _, err := conn.Write(buf[:n]); err != nil {
				t.Fatalf("conn Write: %v", err)
			}
		}
		n, err = conn.Fill(buf)
		if err != nil && !errors.Is(err, tern.ErrClosed) {
			t.Fatalf("conn Fill: %v", err)
		}
		if n > 0 {
			moved = true
			if _, err := cl.Write(buf[:n]); err != nil {
				t.Fatalf("client Write: %v", err)
			}
		}
		if !moved {
			return
		}
	}
	t.Fatal("shuttle: no quiescence")
}

func TestVersion(t *testing.T) {
	if tern.Version != tern.HeaderVersion {
		t.Errorf("binding %s, header %s", tern.Version, tern.HeaderVersion)
	}
	if v := tern.LibraryVersion(); v != tern.HeaderVersion {
		t.Errorf("library %s, header %s", v, tern.HeaderVersion)
	}
	if tern.LibraryVersionNum() < 0x000300 {
		t.Errorf("LibraryVersionNum %#x", tern.LibraryVersionNum())
	}
}

func TestErrors(t *testing.T) {
	o := tern.DefaultOptions()
	o.InflightWindow = 0
	_, err := tern.NewHub(&o)
	if !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("NewHub with a zero window: %v, want ErrInvalid", err)
	}
	if errors.Is(err, tern.ErrFull) {
		t.Fatal("ErrInvalid matches ErrFull")
	}
	var te *tern.Error
	if !errors.As(err, &te) || te.Code != -501 {
		t.Fatalf("errors.As: %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "tern: new hub: ") {
		t.Errorf("Error() = %q", err.Error())
	}
	wrapped := fmt.Errorf("ctx: %w", err)
	if !errors.Is(wrapped, tern.ErrInvalid) {
		t.Error("wrapped error lost its code")
	}
	if !tern.ErrProto.(*tern.Error).Fatal() || tern.ErrFull.(*tern.Error).Fatal() {
		t.Error("Fatal")
	}
}

func TestPublishBadArguments(t *testing.T) {
	h := newHub(t, nil)
	cases := []struct {
		name string
		key  string
		msg  tern.Message
		want error
	}{
		{"empty key", "", tern.Message{}, tern.ErrInvalid},
		{"long key", strings.Repeat("k", tern.MaxSessionKey+1), tern.Message{}, tern.ErrTooLarge},
		{"long id", "k", tern.Message{ID: make([]byte, tern.MaxID+1)}, tern.ErrTooLarge},
		{"priority", "k", tern.Message{Priority: 7}, tern.ErrInvalid},
		{"payload", "k", tern.Message{Payload: make([]byte, 2<<20)}, tern.ErrTooLarge},
		{"attrs", "k", tern.Message{Attrs: make([]tern.Attr, tern.MaxAttrs+1)}, tern.ErrTooLarge},
		{"nul ct", "k", tern.Message{ContentType: "a\x00b"}, tern.ErrInvalid},
		{"nul attr", "k", tern.Message{Attrs: []tern.Attr{{"a\x00", "b"}}}, tern.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := h.Publish(c.key, &c.msg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if st := h.Stats(); st.Published != 0 || st.Sessions != 0 {
		t.Errorf("bad publishes changed the hub: %+v", st)
	}
}

func TestPublishResultAndDuplicate(t *testing.T) {
	h := newHub(t, nil)
	r := mustPublish(t, h, "alice", &tern.Message{ID: []byte("m1"), Payload: []byte("x")})
	if string(r.ID) != "m1" || r.Outcome&tern.Queued == 0 {
		t.Fatalf("result %+v", r)
	}
	r, err := h.Publish("alice", &tern.Message{ID: []byte("m1")})
	if !errors.Is(err, tern.ErrDuplicate) || string(r.ID) != "m1" {
		t.Fatalf("second publish: %+v %v", r, err)
	}
	r = mustPublish(t, h, "alice", &tern.Message{})
	if len(r.ID) == 0 {
		t.Fatal("no generated id")
	}
	st := h.Stats()
	if st.Published != 2 || st.Duplicates != 1 || st.Messages != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOverflowReject(t *testing.T) {
	h := newHub(t, func(o *tern.Options) {
		o.MaxPending = 1
		o.Overflow = [3]tern.Overflow{tern.OverflowReject, tern.OverflowReject, tern.OverflowReject}
		o.RetryAfter = 3 * time.Second
	})
	mustPublish(t, h, "k", &tern.Message{})
	r, err := h.Publish("k", &tern.Message{})
	if !errors.Is(err, tern.ErrFull) || r.Outcome&tern.Rejected == 0 || r.RetryAfter != 3*time.Second {
		t.Fatalf("full publish: %+v %v", r, err)
	}
}

func TestClientRoundTrip(t *testing.T) {
	h := newHub(t, nil)
	conn, err := h.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	co := tern.DefaultClientOptions()
	co.AckEvery = 1
	cl, err := tern.NewClient("bob", []byte("token"), &co)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ev, ok := cl.NextEvent()
	if !ok || ev.Type != tern.ClientEventConnect {
		t.Fatalf("first client event %+v", ev)
	}
	if err := cl.Connect(); err != nil {
		t.Fatal(err)
	}
	shuttle(t, cl, conn)
	if ev, _ := cl.NextEvent(); ev.Type != tern.ClientEventConnected {
		t.Fatalf("want connected, got %+v", ev)
	}
	if key, ok := conn.SessionKey(); !ok || key != "bob" {
		t.Fatalf("SessionKey %q %v", key, ok)
	}
	mustPublish(t, h, "bob", &tern.Message{
		ID: []byte("hello-1"), Payload: []byte("hi bob"), Priority: tern.PriorityHigh,
		ContentType: "text/plain", Attrs: []tern.Attr{{"kind", "greeting"}},
	})
	shuttle(t, cl, conn)
	ev, ok = cl.NextEvent()
	if !ok || ev.Type != tern.ClientEventMessage || string(ev.Payload) != "hi bob" ||
		string(ev.ID) != "hello-1" || ev.ContentType != "text/plain" ||
		ev.Priority != tern.PriorityHigh || len(ev.Attrs) != 1 || ev.Attrs[0] != (tern.Attr{"kind", "greeting"}) {
		t.Fatalf("message event %+v", ev)
	}
	shuttle(t, cl, conn) // the ACK goes out
	if st := h.Stats(); st.Acked != 1 || st.Messages != 0 {
		t.Fatalf("hub stats after ack %+v", st)
	}
	if st := cl.Stats(); st.Received != 1 || st.Delivered != 1 || st.AcksSent == 0 {
		t.Fatalf("client stats %+v", st)
	}
	state, err := cl.SaveState()
	if err != nil || len(state) == 0 {
		t.Fatalf("SaveState %v", err)
	}
	cl2, err := tern.NewClient("bob", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if err := cl2.RestoreState(state); err != nil {
		t.Fatalf("RestoreState: %v", err)
	}
	if err := cl2.RestoreState([]byte("garbage")); !errors.Is(err, tern.ErrProto) {
		t.Fatalf("RestoreState(garbage): %v", err)
	}
	cl3, _ := tern.NewClient("carol", nil, nil)
	defer cl3.Close()
	if err := cl3.RestoreState(state); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("RestoreState of another key: %v", err)
	}

	// Goodbye: the GOAWAY goes out and the hub closes the connection.
	if err := cl.Goodbye(); err != nil {
		t.Fatal(err)
	}
	shuttle(t, cl, conn)
	var sawClosed bool
	for {
		e, ok := h.NextEvent()
		if !ok {
			break
		}
		if e.Type == tern.EventConnClosed && e.Conn == conn && tern.GoAwayReason(e.Reason) == tern.GoAwayClient {
			sawClosed = true
		}
	}
	if !sawClosed || !conn.Closed() {
		t.Fatal("no EventConnClosed for the client's goodbye")
	}
	var disc bool
	for {
		e, ok := cl.NextEvent()
		if !ok {
			break
		}
		disc = disc || e.Type == tern.ClientEventDisconnected
	}
	if !disc {
		t.Fatal("no ClientEventDisconnected")
	}
	conn.Close()
	if _, err := conn.Write([]byte{1}); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestClientPublish(t *testing.T) {
	h := newHub(t, nil)
	conn, _ := h.NewConn()
	defer conn.Close()
	if err := conn.AllowPublish(true); err != nil {
		t.Fatal(err)
	}
	cl, _ := tern.NewClient("producer", nil, nil)
	defer cl.Close()
	cl.NextEvent()
	if _, err := cl.Publish("dave", &tern.Message{}); !errors.Is(err, tern.ErrState) {
		t.Fatalf("Publish before connect: %v", err)
	}
	cl.Connect()
	shuttle(t, cl, conn)
	cl.NextEvent()
	req, err := cl.Publish("dave", &tern.Message{ID: []byte("p1"), Payload: []byte("from a producer")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateTopic("news", nil); err != nil {
		t.Fatal(err)
	}
	req2, err := cl.PublishTopic("news", &tern.Message{Payload: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	shuttle(t, cl, conn)
	got := map[uint64]tern.PubackStatus{}
	for {
		e, ok := cl.NextEvent()
		if !ok {
			break
		}
		if e.Type == tern.ClientEventPuback {
			got[e.Seq] = tern.PubackStatus(e.Reason)
		}
	}
	if got[req] != tern.PubackAccepted || got[req2] != tern.PubackAccepted || len(got) != 2 {
		t.Fatalf("pubacks %v (req %d, %d)", got, req, req2)
	}
	info, err := h.Session("dave")
	if err != nil || info.Pending != 1 {
		t.Fatalf("dave: %+v %v", info, err)
	}
}

func TestStreamSSEAndAck(t *testing.T) {
	h := newHub(t, nil)
	c, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "web", Retry: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Framing() != tern.FramingSSE || c.Framing().ContentType() != "text/event-stream" {
		t.Fatal("framing")
	}
	mustPublish(t, h, "web", &tern.Message{ID: []byte("a"), Payload: []byte("one"), Priority: tern.PriorityNormal})
	mustPublish(t, h, "web", &tern.Message{ID: []byte("b"), Payload: []byte("two"), Priority: tern.PriorityNormal})
	out := drain(t, c)
	epoch := h.Epoch()
	for _, want := range []string{"retry: 2000", "event: msg", fmt.Sprintf("id: %d.2", epoch), `"data":"two"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("SSE output lacks %q:\n%s", want, out)
		}
	}
	if n, err := h.Ack("web", 2); err != nil || n != 2 {
		t.Fatalf("Ack: %d %v", n, err)
	}
	if _, err := h.Ack("web", 99); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Ack of an unsent seq: %v", err)
	}
	if _, err := h.Ack("nobody", 1); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("Ack of no session: %v", err)
	}
	if _, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingBinary, Key: "x"}); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("binary stream: %v", err)
	}
	e, s, err := tern.ParseResume(fmt.Sprintf("%d.7", epoch))
	if err != nil || e != epoch || s != 7 {
		t.Fatalf("ParseResume: %d %d %v", e, s, err)
	}
	if _, _, err := tern.ParseResume("x.1"); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("ParseResume(bad): %v", err)
	}
	if tern.FramingNDJSON.ContentType() != "application/x-ndjson" || tern.FramingBinary.ContentType() != "" {
		t.Fatal("content types")
	}
}

func TestShortPoll(t *testing.T) {
	h := newHub(t, nil)
	mustPublish(t, h, "p", &tern.Message{Payload: []byte("polled")})
	c, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingPoll, Key: "p", ShortPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b bytes.Buffer
	_, err = c.WriteTo(&b)
	if !errors.Is(err, tern.ErrClosed) || !strings.HasPrefix(b.String(), "[") || !strings.Contains(b.String(), "polled") {
		t.Fatalf("poll answer %q %v", b.String(), err)
	}
}

func TestPublishManyAndBatch(t *testing.T) {
	h := newHub(t, nil)
	n, res, krs, err := h.PublishMany([]string{"a", "b", "", "c"}, &tern.Message{ID: []byte("same"), Payload: []byte("p")})
	if err != nil || n != 3 || string(res.ID) != "same" || len(krs) != 4 {
		t.Fatalf("PublishMany: %d %+v %v", n, res, err)
	}
	if krs[0].Err != nil || !errors.Is(krs[2].Err, tern.ErrInvalid) {
		t.Fatalf("key results %+v", krs)
	}
	var b tern.Batch
	b.Add("a", &tern.Message{ID: []byte("same")}) // duplicate of the above
	b.Add("a", &tern.Message{ID: []byte("new"), Payload: []byte("q"), Attrs: []tern.Attr{{"x", "1"}}, ContentType: "t/p"})
	b.Add("", &tern.Message{})
	if err := b.Add("a", &tern.Message{ContentType: "\x00"}); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Batch.Add(bad): %v", err)
	}
	q, err := h.PublishBatch(&b)
	if err != nil || q != 1 || b.Len() != 3 {
		t.Fatalf("PublishBatch: %d %v", q, err)
	}
	if _, err := b.Result(0); !errors.Is(err, tern.ErrDuplicate) {
		t.Errorf("result 0: %v", err)
	}
	if o, err := b.Result(1); err != nil || o&tern.Queued == 0 {
		t.Errorf("result 1: %v %v", o, err)
	}
	if _, err := b.Result(2); !errors.Is(err, tern.ErrInvalid) {
		t.Errorf("result 2: %v", err)
	}
	b.Reset()
	if b.Len() != 0 {
		t.Fatal("Reset")
	}
	if info, _ := h.Session("a"); info.Pending != 2 {
		t.Fatalf("a holds %+v", info)
	}
}

func TestSessionsManagement(t *testing.T) {
	clk := newFakeClock()
	h := newHub(t, func(o *tern.Options) { o.Clock = clk.Now; o.SessionTTL = time.Minute })
	for i := 0; i < 5; i++ {
		mustPublish(t, h, fmt.Sprintf("s%d", i), &tern.Message{ID: []byte("m")})
	}
	mustPublish(t, h, "s0", &tern.Message{ID: []byte("m2")})
	seen := map[string]bool{}
	for it := h.Sessions(); it.Next(); {
		seen[it.Session().Key] = true
	}
	if len(seen) != 5 {
		t.Fatalf("iterated %v", seen)
	}
	if _, err := h.Session("none"); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("Session(none): %v", err)
	}
	if err := h.SetSessionValue("none", 1); !errors.Is(err, tern.ErrNotFound) {
		t.Fatal(err)
	}
	type user struct{ name string }
	if err := h.SetSessionValue("s1", &user{"one"}); err != nil {
		t.Fatal(err)
	}
	info, _ := h.Session("s1")
	if u, ok := info.Value.(*user); !ok || u.name != "one" || !info.ExpiresSet {
		t.Fatalf("info %+v", info)
	}
	sent, err := h.Cancel("s0", []byte("m2"))
	if err != nil || sent {
		t.Fatalf("Cancel: %v %v", sent, err)
	}
	if _, err := h.Cancel("s0", []byte("m2")); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("Cancel again: %v", err)
	}
	if n, err := h.PurgeSession("s0", false); err != nil || n != 1 {
		t.Fatalf("Purge: %d %v", n, err)
	}
	if err := h.DeleteSession("s2"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSession("s2"); !errors.Is(err, tern.ErrNotFound) {
		t.Fatal(err)
	}
	// Session expiry carries the value back.
	clk.Advance(2 * time.Minute)
	if err := h.HandleExpiry(); err != nil {
		t.Fatal(err)
	}
	var expired []string
	var value interface{}
	for {
		e, ok := h.NextEvent()
		if !ok {
			break
		}
		if e.Type == tern.EventSessionExpired {
			expired = append(expired, e.SessionKey)
			if e.SessionKey == "s1" {
				value = e.Value
			}
		}
	}
	if len(expired) != 4 {
		t.Fatalf("expired %v", expired)
	}
	if u, ok := value.(*user); !ok || u.name != "one" {
		t.Fatalf("expired session's value %v", value)
	}
	if st := h.Stats(); st.Sessions != 0 || st.SessionsExpired != 4 || st.SessionsDeleted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTraceEventsAndExpiry(t *testing.T) {
	clk := newFakeClock()
	h := newHub(t, func(o *tern.Options) { o.Clock = clk.Now })
	mustPublish(t, h, "k", &tern.Message{ID: []byte("t1"), TTL: time.Second, Trace: true, Cookie: 42})
	exp, ok := h.Expiry()
	if !ok || exp > clk.Now()+time.Second {
		t.Fatalf("Expiry %v %v", exp, ok)
	}
	clk.Advance(2 * time.Second)
	h.HandleExpiry()
	var types []tern.EventType
	for {
		e, ok := h.NextEvent()
		if !ok {
			break
		}
		if e.Cookie != 42 || string(e.MsgID) != "t1" || e.SessionKey != "k" {
			t.Fatalf("event %+v", e)
		}
		types = append(types, e.Type)
	}
	if len(types) != 2 || types[0] != tern.EventAccepted || types[1] != tern.EventExpired {
		t.Fatalf("events %v", types)
	}
	if tern.EventExpired.String() != "expired" {
		t.Fatal(tern.EventExpired.String())
	}
	if st := h.Stats(); st.Expired != 1 || st.Messages != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTopics(t *testing.T) {
	h := newHub(t, nil)
	top, err := h.CreateTopic("trade.usd", &tern.TopicOptions{MaxMessages: 100})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.CreateTopic("trade.usd", nil); !errors.Is(err, tern.ErrDuplicate) || again != top {
		t.Fatalf("CreateTopic again: %v", err)
	}
	if _, err := h.CreateTopic("bad..name", nil); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if n, err := h.Subscribe("alice", "trade.*", "price > 100"); err != nil || n != 1 {
		t.Fatalf("Subscribe: %d %v", n, err)
	}
	if n, err := h.Subscribe("bob", "trade.#", ""); err != nil || n != 1 {
		t.Fatalf("Subscribe bob: %d %v", n, err)
	}
	_, err = h.Subscribe("carol", "trade.*", "price >")
	var se *tern.SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("bad filter: %v", err)
	}
	if _, err := h.Subscribe("carol", "no.such", ""); !errors.Is(err, tern.ErrNotFound) {
		t.Fatalf("exact name that is no topic: %v", err)
	}
	cheap, err := top.Publish(&tern.Message{Payload: []byte("cheap"), Attrs: []tern.Attr{{"price", "50"}}})
	if err != nil {
		t.Fatal(err)
	}
	dear, err := top.Publish(&tern.Message{Payload: []byte("dear"), Attrs: []tern.Attr{{"price", "500"}}})
	if err != nil || dear != cheap+1 {
		t.Fatalf("offsets %d %d %v", cheap, dear, err)
	}
	if r, err := top.Receipt(cheap); err != nil || r.Subscribed != 1 {
		t.Fatalf("receipt of cheap %+v %v", r, err)
	}
	if r, err := top.Receipt(dear); err != nil || r.Subscribed != 2 {
		t.Fatalf("receipt of dear %+v %v", r, err)
	}
	if _, err := top.Receipt(999); !errors.Is(err, tern.ErrNotFound) {
		t.Fatal(err)
	}
	c, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingNDJSON, Key: "alice"})
	defer c.Close()
	out := drain(t, c)
	if !strings.Contains(out, "dear") || strings.Contains(out, "cheap") {
		t.Fatalf("alice's stream:\n%s", out)
	}
	if info := top.Info(); info.Messages != 2 || info.Members != 2 || info.Name != "trade.usd" || info.EndOffset != dear+1 {
		t.Fatalf("info %+v", info)
	}
	if found, err := h.Topic("trade.usd"); err != nil || found != top {
		t.Fatal("Topic lookup")
	}
	if n, err := h.Unsubscribe("bob", "trade.#"); err != nil || n != 1 {
		t.Fatalf("Unsubscribe %d %v", n, err)
	}
	if _, err := h.Unsubscribe("bob", "trade.#"); !errors.Is(err, tern.ErrNotFound) {
		t.Fatal(err)
	}
	top.Delete()
	if _, err := top.Publish(&tern.Message{}); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("publish to a deleted topic: %v", err)
	}
	if _, err := h.Topic("trade.usd"); !errors.Is(err, tern.ErrNotFound) {
		t.Fatal(err)
	}
	if err := tern.CheckTopicPattern("a.*.c"); err != nil {
		t.Fatal(err)
	}
	err = tern.CheckTopicPattern("a.b*")
	if !errors.As(err, &se) || se.Pos != 3 {
		t.Fatalf("CheckTopicPattern: %v", err)
	}
	err = tern.CheckFilter("status in (a, b")
	if !errors.As(err, &se) || se.Msg == "" || !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("CheckFilter: %v", err)
	}
	if err := tern.CheckFilter("status in (a, b) and price > 3"); err != nil {
		t.Fatal(err)
	}
}

func TestShardOf(t *testing.T) {
	vectors := []struct {
		key  string
		n    uint32
		want uint32
	}{
		{"a", 2, 1}, {"a", 1000, 163}, {"a", 65536, 29077},
		{"order-42", 8, 7}, {"order-42", 65536, 17621},
		{"user:1001", 1000, 835}, {"r0", 65536, 44656}, {"x", 0, 0},
	}
	for _, v := range vectors {
		if got := tern.ShardOf(v.key, v.n); got != v.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", v.key, v.n, got, v.want)
		}
	}
}

func TestHelloAcceptAndGoAway(t *testing.T) {
	h := newHub(t, func(o *tern.Options) { o.HelloAccept = true })
	conn, _ := h.NewConn()
	defer conn.Close()
	cl, _ := tern.NewClient("guarded", []byte("secret"), nil)
	defer cl.Close()
	cl.NextEvent()
	cl.Connect()
	shuttle(t, cl, conn)
	e, ok := h.NextEvent()
	if !ok || e.Type != tern.EventConnHello || string(e.Aux) != "secret" || e.Conn != conn || e.SessionKey != "guarded" {
		t.Fatalf("hello event %+v", e)
	}
	if err := conn.Accept(); err != nil {
		t.Fatal(err)
	}
	if h.NextReady() != conn || h.NextReady() != nil {
		t.Fatal("NextReady after Accept")
	}
	if err := conn.Accept(); !errors.Is(err, tern.ErrState) {
		t.Fatalf("second Accept: %v", err)
	}
	shuttle(t, cl, conn)
	if ev, _ := cl.NextEvent(); ev.Type != tern.ClientEventConnected {
		t.Fatalf("client %+v", ev)
	}
	if err := h.SetWallclock(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.SetWallclock(time.Unix(0, 0)); !errors.Is(err, tern.ErrInvalid) {
		t.Fatal(err)
	}
	if n, err := h.GoAwayAll(tern.GoAwayRestart, time.Second); err != nil || n != 1 {
		t.Fatalf("GoAwayAll %d %v", n, err)
	}
	shuttle(t, cl, conn)
	if !conn.Closed() || conn.Info().Closed != true {
		t.Fatal("not closed")
	}
	if err := conn.GoAway(tern.GoAwayReplaced, 0); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("GoAway on a closed conn: %v", err)
	}
}

func TestProtocolError(t *testing.T) {
	h := newHub(t, nil)
	conn, _ := h.NewConn()
	defer conn.Close()
	_, err := conn.Write([]byte{0xff, 0xff, 0xff, 0xff})
	if err == nil || !conn.Closed() {
		t.Fatalf("garbage: %v", err)
	}
	var te *tern.Error
	if !errors.As(err, &te) || !te.Fatal() && !errors.Is(err, tern.ErrTooLarge) {
		t.Fatalf("garbage error %v", err)
	}
	if st := h.Stats(); st.ProtoErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClosedHub(t *testing.T) {
	h := newHub(t, nil)
	c, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "k"})
	top, _ := h.CreateTopic("t", nil)
	h.Close()
	h.Close()
	if _, err := h.Publish("k", &tern.Message{}); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Publish on a closed hub: %v", err)
	}
	if _, err := c.Fill(make([]byte, 10)); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Fill on a closed hub: %v", err)
	}
	if _, err := top.Publish(&tern.Message{}); !errors.Is(err, tern.ErrClosed) {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if (h.Stats() != tern.Stats{}) || h.Epoch() != 0 {
		t.Fatal("stats of a closed hub")
	}
	if _, err := h.WaitEvent(context.Background()); !errors.Is(err, tern.ErrClosed) {
		t.Fatal(err)
	}
}

func TestPumpWithRun(t *testing.T) {
	h := newHub(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- h.Run(ctx) }()

	c, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingNDJSON, Key: "live"})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := ioPipe()
	pumpDone := make(chan error, 1)
	pctx, pcancel := context.WithCancel(ctx)
	go func() { pumpDone <- c.Pump(pctx, pw) }()

	const n = 50
	var wg sync.WaitGroup
	for g := 0; g < 5; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < n/5; i++ {
				if _, err := h.Publish("live", &tern.Message{Payload: []byte(fmt.Sprintf("m-%d-%d", g, i))}); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	got := 0
	for got < n {
		line, err := pr.ReadLine(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d lines: %v", got, err)
		}
		if strings.Contains(line, `"seq":`) {
			got++
		}
	}
	if _, err := h.Ack("live", uint64(n)); err != nil {
		t.Fatal(err)
	}
	pcancel()
	if err := <-pumpDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Pump: %v", err)
	}
	// A deleted session closes the stream: Pump returns nil.
	pumpDone2 := make(chan error, 1)
	go func() { pumpDone2 <- c.Pump(ctx, pw) }()
	if err := h.DeleteSession("live"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-pumpDone2:
		if err != nil {
			t.Fatalf("Pump after delete: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pump did not end")
	}
	c.Close()
	ev, err := h.WaitEvent(ctx)
	if err != nil || ev.Type != tern.EventConnClosed {
		t.Fatalf("WaitEvent %+v %v", ev, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer wcancel()
	if _, err := h.WaitEvent(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvent on an empty queue: %v", err)
	}
	cancel()
	if err := <-runDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if st := h.Stats(); st.Acked != n {
		t.Fatalf("acked %d", st.Acked)
	}
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	fs, err := tern.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tern.OpenFileStore(dir, nil); !errors.Is(err, tern.ErrState) {
		t.Fatalf("second open: %v", err)
	}
	h, _ := tern.NewHub(nil)
	if err := h.SetStore(fs); err != nil {
		t.Fatal(err)
	}
	epoch := h.Epoch()
	mustPublish(t, h, "durable", &tern.Message{ID: []byte("d1"), Payload: []byte("kept")})
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); !errors.Is(err, tern.ErrState) {
		t.Fatalf("Close with the hub open: %v", err)
	}
	if st := fs.Stats(); st.Records == 0 || st.Segments == 0 {
		t.Fatalf("store stats %+v", st)
	}
	if err := fs.Sync(); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}

	fs2, err := tern.OpenFileStore(dir, &tern.FileStoreOptions{Fsync: tern.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer fs2.Close()
	h2, _ := tern.NewHub(nil)
	defer h2.Close()
	if err := h2.SetStore(fs2); err != nil {
		t.Fatal(err)
	}
	if h2.Epoch() != epoch {
		t.Fatal("epoch not restored")
	}
	info, err := h2.Session("durable")
	if err != nil || info.Pending != 1 {
		t.Fatalf("restored session %+v %v", info, err)
	}
	if err := h2.SetStore(fs2); !errors.Is(err, tern.ErrState) {
		t.Fatalf("second SetStore: %v", err)
	}
	if err := fs2.Compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := tern.OpenFileStore("", nil); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("open of an empty path: %v", err)
	}
	_, err = tern.OpenFileStore("/proc/no/such/dir", nil)
	var te *tern.Error
	if !errors.As(err, &te) || te.Detail == "" {
		t.Fatalf("open of a bad path: %v", err)
	}
}

// TestFinalizerSafetyNet drops a hub with a file store attached without
// closing either: the finalizers close both, which releases the store's
// directory lock, so the directory opens again.
func TestFinalizerSafetyNet(t *testing.T) {
	dir := t.TempDir()
	func() {
		fs, err := tern.OpenFileStore(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := tern.NewHub(nil)
		if err := h.SetStore(fs); err != nil {
			t.Fatal(err)
		}
		mustPublish(t, h, "k", &tern.Message{})
	}()
	for i := 0; i < 100; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		fs, err := tern.OpenFileStore(dir, nil)
		if err == nil {
			fs.Close()
			return
		}
		if !errors.Is(err, tern.ErrState) {
			t.Fatal(err)
		}
	}
	t.Fatal("the dropped store was never closed")
}

// TestProducerBackpressure: a producer connection that owes too many
// PUBACKs consumes fewer bytes than given, with ErrBackpressure; once its
// output is written it takes the rest.
func TestProducerBackpressure(t *testing.T) {
	h := newHub(t, func(o *tern.Options) { o.MaxPending = 100000 })
	conn, _ := h.NewConn()
	defer conn.Close()
	conn.AllowPublish(true)
	cl, _ := tern.NewClient("producer", nil, nil)
	defer cl.Close()
	cl.NextEvent()
	cl.Connect()
	shuttle(t, cl, conn)
	cl.NextEvent()
	const n = 3000
	for i := 0; i < n; i++ {
		if _, err := cl.Publish("sink", &tern.Message{Payload: []byte("p")}); err != nil {
			t.Fatal(err)
		}
	}
	var in bytes.Buffer
	if _, err := cl.WriteTo(&in); err != nil {
		t.Fatal(err)
	}
	pending := in.Bytes()
	out := make([]byte, 1<<20)
	short := false
	for len(pending) > 0 {
		m, err := conn.Write(pending)
		pending = pending[m:]
		if err != nil {
			if !errors.Is(err, tern.ErrBackpressure) || len(pending) == 0 {
				t.Fatalf("Write: %d %v", m, err)
			}
			short = true
			k, _ := conn.Fill(out)
			if _, err := cl.Write(out[:k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !short {
		t.Fatal("no backpressure with 3000 PUBLISH frames at once")
	}
	shuttle(t, cl, conn)
	acks := 0
	for {
		e, ok := cl.NextEvent()
		if !ok {
			break
		}
		if e.Type == tern.ClientEventPuback && tern.PubackStatus(e.Reason) == tern.PubackAccepted {
			acks++
		}
	}
	if info, _ := h.Session("sink"); acks != n || info.Pending != n {
		t.Fatalf("%d PUBACKs, %d pending", acks, info.Pending)
	}
}

// TestLongPoll: a long poll with nothing to send ends after its hold time
// with an empty answer (Hub.Run runs the deadline); one that gets a message
// while it waits answers with it at once.
func TestLongPoll(t *testing.T) {
	h := newHub(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)

	c, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingPoll, Key: "lp", PollHold: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	start := time.Now()
	if err := c.Pump(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); b.Len() != 0 || waited < 40*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("empty poll: %q after %v", b.String(), waited)
	}
	c.Close()

	c, _ = h.NewStream(tern.StreamOptions{Framing: tern.FramingPoll, Key: "lp"})
	defer c.Close()
	go func() {
		time.Sleep(20 * time.Millisecond)
		h.Publish("lp", &tern.Message{Payload: []byte("late")})
	}()
	b.Reset()
	if err := c.Pump(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"data":"late"`) {
		t.Fatalf("poll answer %q", b.String())
	}
}

// TestSyncPublishWithSyncThread: a Sync publish on a file store that syncs
// on its own thread is confirmed by EventPersisted once Hub.Run completed
// its batch; the cookie comes back with it.
func TestSyncPublishWithSyncThread(t *testing.T) {
	fs, err := tern.OpenFileStore(t.TempDir(), &tern.FileStoreOptions{SyncThread: true})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := tern.NewHub(nil)
	defer func() {
		h.Close()
		if err := fs.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := h.SetStore(fs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go h.Run(ctx)
	mustPublish(t, h, "k", &tern.Message{ID: []byte("s1"), Sync: true, Cookie: 7})
	for {
		ev, err := h.WaitEvent(ctx)
		if err != nil {
			t.Fatalf("no EventPersisted: %v", err)
		}
		if ev.Type == tern.EventPersisted {
			if ev.Cookie != 7 || ev.Err() != nil || string(ev.MsgID) != "s1" {
				t.Fatalf("persisted %+v", ev)
			}
			break
		}
	}
	if st := fs.Stats(); st.Fsyncs == 0 {
		t.Fatalf("store stats %+v", st)
	}
}
