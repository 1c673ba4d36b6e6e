package tern_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"libtern.dev/bindings/go/tern"
)

// twinStreams returns two NDJSON streams of two hubs with the same seed,
// clock and messages: their output is the same bytes.
func twinStreams(t *testing.T, msgs int) (a, b *tern.Conn) {
	t.Helper()
	clk := newFakeClock()
	var conns [2]*tern.Conn
	for i := range conns {
		h := newHub(t, func(o *tern.Options) { o.Clock = clk.Now })
		c, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingNDJSON, Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		for j := 0; j < msgs; j++ {
			p := append([]byte(fmt.Sprintf("%03d", j)), bytes.Repeat([]byte("x"), 997)...)
			mustPublish(t, h, "k", &tern.Message{Payload: p})
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// fill takes everything a Conn or Client has now through Fill.
func fill(t *testing.T, c interface{ Fill([]byte) (int, error) }) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Fill(buf)
		if err != nil {
			t.Fatalf("Fill: %v", err)
		}
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// peekSender is the send loop's side of Conn and Client.
type peekSender interface {
	PeekOutput() ([]byte, error)
	Consume(n int) error
	WantWrite() bool
	Fill(p []byte) (int, error)
}

// peekAll sends everything p has through a transport that takes 7 bytes
// at a time, and returns the bytes sent, which must be want (more than
// one peek's worth: what Fill gives a twin). Along the way: a peek again
// gives the same bytes until they are consumed, and a copy (changing it
// changes nothing); WantWrite holds and Fill waits while bytes are held;
// no peek is over PeekMax; there are at least two. After: no WantWrite,
// and Fill gives nothing.
func peekAll(t *testing.T, p peekSender, want []byte) []byte {
	t.Helper()
	if len(want) <= tern.PeekMax {
		t.Fatalf("only %d bytes: one peek", len(want))
	}
	var sent []byte
	peeks := 0
	for {
		data, err := p.PeekOutput()
		if err != nil {
			t.Fatalf("PeekOutput: %v", err)
		}
		if data == nil {
			break
		}
		peeks++
		if len(data) > tern.PeekMax {
			t.Fatalf("peek of %d bytes", len(data))
		}
		for len(data) > 0 {
			again, err := p.PeekOutput()
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("a second peek gave %d bytes, %v; want the same %d", len(again), err, len(data))
			}
			if !p.WantWrite() {
				t.Fatal("WantWrite false while bytes are held")
			}
			if _, err := p.Fill(make([]byte, 64)); !errors.Is(err, tern.ErrState) {
				t.Fatalf("Fill while bytes are held: %v, want ErrState", err)
			}
			k := 7
			if k > len(data) {
				k = len(data)
			}
			again[0] ^= 0xff // a copy: the held bytes do not change
			if err := p.Consume(k); err != nil {
				t.Fatalf("Consume(%d): %v", k, err)
			}
			sent = append(sent, data[:k]...)
			data = data[k:]
		}
	}
	if peeks < 2 {
		t.Fatalf("%d peeks", peeks)
	}
	if !bytes.Equal(sent, want) {
		t.Fatalf("peek/consume sent %d bytes, Fill %d: they differ", len(sent), len(want))
	}
	if p.WantWrite() {
		t.Fatal("WantWrite after everything was consumed")
	}
	if n, err := p.Fill(make([]byte, 64)); n != 0 || err != nil {
		t.Fatalf("Fill after consume: %d %v", n, err)
	}
	return sent
}

func TestPeekOutputConsume(t *testing.T) {
	c, ref := twinStreams(t, 40)
	peekAll(t, c, fill(t, ref))
}

func TestConsumeErrors(t *testing.T) {
	c, _ := twinStreams(t, 1)
	if err := c.Consume(1); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Consume with nothing held: %v, want ErrInvalid", err)
	}
	data, err := c.PeekOutput()
	if err != nil || len(data) == 0 {
		t.Fatalf("PeekOutput: %d bytes, %v", len(data), err)
	}
	for _, n := range []int{-1, len(data) + 1} {
		err := c.Consume(n)
		var te *tern.Error
		if !errors.Is(err, tern.ErrInvalid) || !errors.As(err, &te) {
			t.Fatalf("Consume(%d): %v, want ErrInvalid", n, err)
		}
	}
	if err := c.Consume(0); err != nil {
		t.Fatalf("Consume(0): %v", err)
	}
	if again, _ := c.PeekOutput(); !bytes.Equal(again, data) {
		t.Fatal("a failed Consume took bytes")
	}
	if err := c.Consume(len(data)); err != nil {
		t.Fatal(err)
	}
	if data, err := c.PeekOutput(); data != nil || err != nil {
		t.Fatalf("nothing to send: %q %v, want nil, nil", data, err)
	}
	// Held bytes go with the connection.
	h := newHub(t, nil)
	c2, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "s"})
	mustPublish(t, h, "s", &tern.Message{Payload: []byte("x")})
	if data, err := c2.PeekOutput(); err != nil || data == nil {
		t.Fatalf("PeekOutput: %q %v", data, err)
	}
	c2.Close()
	if _, err := c2.PeekOutput(); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("PeekOutput after Close: %v", err)
	}
	if err := c2.Consume(0); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Consume after Close: %v", err)
	}
	c3, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "s3"})
	h.Close()
	if _, err := c3.PeekOutput(); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("PeekOutput on a closed hub: %v", err)
	}
}

func TestPeekOutputClosedConn(t *testing.T) {
	h := newHub(t, nil)
	c, _ := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "s"})
	defer c.Close()
	mustPublish(t, h, "s", &tern.Message{Payload: []byte("last")})
	held, err := c.PeekOutput()
	if err != nil || !bytes.Contains(held, []byte("last")) {
		t.Fatalf("PeekOutput: %q %v", held, err)
	}
	if err := c.GoAway(tern.GoAwayRestart, 0); err != nil {
		t.Fatal(err)
	}
	if !c.Closed() {
		t.Fatal("not closed after GoAway")
	}
	// Held bytes are still offered after the close, then what the close
	// queued, then ErrClosed.
	for i := 0; ; i++ {
		data, err := c.PeekOutput()
		if errors.Is(err, tern.ErrClosed) && data == nil {
			if i == 0 {
				t.Fatal("the held bytes were lost")
			}
			break
		}
		if err != nil || (i == 0 && !bytes.Equal(data, held)) || i > 10 {
			t.Fatalf("peek %d after GoAway: %q %v", i, data, err)
		}
		if err := c.Consume(len(data)); err != nil {
			t.Fatal(err)
		}
	}
}

// brokenWriter takes up to take bytes in all, then fails.
type brokenWriter struct {
	buf   bytes.Buffer
	take  int
	short bool // fail with a short count and no error
}

var errBroken = errors.New("broken pipe")

func (w *brokenWriter) Write(p []byte) (int, error) {
	n := len(p)
	if n > w.take {
		n = w.take
	}
	w.take -= n
	w.buf.Write(p[:n])
	if n < len(p) {
		if w.short {
			return n, nil
		}
		return n, errBroken
	}
	return n, nil
}

// holder is what Conn and Client share: WriteTo keeps what the writer did
// not take, and Fill waits for it.
type holder interface {
	io.WriterTo
	WantWrite() bool
	Fill([]byte) (int, error)
}

// writeToBroken runs h.WriteTo into a writer that takes 5 bytes, then fails
// (short: returns short with no error), and checks the rest is held.
func writeToBroken(t *testing.T, h holder, short bool) *brokenWriter {
	t.Helper()
	w := &brokenWriter{take: 5, short: short}
	n, err := h.WriteTo(w)
	wantErr := errBroken
	if short {
		wantErr = io.ErrShortWrite
	}
	if n != 5 || !errors.Is(err, wantErr) {
		t.Fatalf("WriteTo into a writer that takes 5: %d %v", n, err)
	}
	if !h.WantWrite() {
		t.Fatal("the rest is not held")
	}
	if _, err := h.Fill(make([]byte, 64)); !errors.Is(err, tern.ErrState) {
		t.Fatalf("Fill with bytes held: %v", err)
	}
	return w
}

func TestWriteToKeepsWhatTheWriterDidNotTake(t *testing.T) {
	for _, short := range []bool{false, true} {
		c, ref := twinStreams(t, 40)
		want := fill(t, ref)
		w := writeToBroken(t, c, short)
		// A writer failing in a later chunk, then one that takes the rest.
		w2 := &brokenWriter{take: tern.PeekMax + 100}
		n2, err := c.WriteTo(w2)
		if n2 != int64(tern.PeekMax+100) || !errors.Is(err, errBroken) {
			t.Fatalf("second WriteTo: %d %v", n2, err)
		}
		var rest bytes.Buffer
		if _, err := c.WriteTo(&rest); err != nil {
			t.Fatalf("last WriteTo: %v", err)
		}
		got := append(append(w.buf.Bytes(), w2.buf.Bytes()...), rest.Bytes()...)
		if !bytes.Equal(got, want) {
			t.Fatalf("short=%v: %d bytes through WriteTo, %d through Fill: they differ", short, len(got), len(want))
		}
	}
}

func TestPumpKeepsWhatTheWriterDidNotTake(t *testing.T) {
	c, ref := twinStreams(t, 10)
	want := fill(t, ref)
	w := &brokenWriter{take: 100}
	if err := c.Pump(context.Background(), w); !errors.Is(err, errBroken) {
		t.Fatalf("Pump into a writer that takes 100: %v", err)
	}
	var rest bytes.Buffer
	if _, err := c.WriteTo(&rest); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if got := append(w.buf.Bytes(), rest.Bytes()...); !bytes.Equal(got, want) {
		t.Fatalf("%d bytes through Pump and WriteTo, %d through Fill: they differ", len(got), len(want))
	}
}

func TestClientWriteToKeepsWhatTheWriterDidNotTake(t *testing.T) {
	for _, short := range []bool{false, true} {
		c, err := tern.NewClient("held", []byte("token"), nil)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := tern.NewClient("held", []byte("token"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Connect() != nil || ref.Connect() != nil {
			t.Fatal("connect")
		}
		var want bytes.Buffer
		if _, err := ref.WriteTo(&want); err != nil || want.Len() <= 5 {
			t.Fatalf("the twin's HELLO: %d bytes, %v", want.Len(), err)
		}
		w := writeToBroken(t, c, short)
		var rest bytes.Buffer
		if _, err := c.WriteTo(&rest); err != nil {
			t.Fatalf("second WriteTo: %v", err)
		}
		if got := append(w.buf.Bytes(), rest.Bytes()...); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("short=%v: %q through WriteTo, %q from the twin", short, got, want.Bytes())
		}
		// A lost transport drops what it held.
		w3 := &brokenWriter{take: 0}
		if c.ConnLost() != nil || c.Connect() != nil {
			t.Fatal("reconnect")
		}
		if _, err := c.WriteTo(w3); !errors.Is(err, errBroken) || !c.WantWrite() {
			t.Fatalf("a HELLO held: %v", err)
		}
		if c.ConnLost() != nil || c.WantWrite() {
			t.Fatal("ConnLost keeps the held bytes")
		}
		c.Close()
		ref.Close()
	}
}

// twinProducers returns two producer clients with the same seed and clock,
// each connected to a hub of its own that lets it publish, with the same
// 40 PUBLISH frames of 1000 bytes queued: their output is the same bytes.
func twinProducers(t *testing.T) (a, b *tern.Client, conn *tern.Conn, h *tern.Hub) {
	t.Helper()
	clk := newFakeClock()
	var cls [2]*tern.Client
	for i := range cls {
		hub := newHub(t, func(o *tern.Options) { o.Clock = clk.Now })
		cn, err := hub.NewConn()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cn.Close() })
		if err := cn.AllowPublish(true); err != nil {
			t.Fatal(err)
		}
		o := tern.DefaultClientOptions()
		o.Seed, o.Clock = 7, clk.Now
		cl, err := tern.NewClient("producer", nil, &o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		cl.NextEvent()
		if err := cl.Connect(); err != nil {
			t.Fatal(err)
		}
		shuttle(t, cl, cn)
		if e, _ := cl.NextEvent(); e.Type != tern.ClientEventConnected {
			t.Fatalf("event %v, want connected", e.Type)
		}
		for j := 0; j < 40; j++ {
			p := append([]byte(fmt.Sprintf("%03d", j)), bytes.Repeat([]byte("x"), 997)...)
			if _, err := cl.Publish("sink", &tern.Message{Payload: p}); err != nil {
				t.Fatal(err)
			}
		}
		cls[i], conn, h = cl, cn, hub
	}
	return cls[1], cls[0], conn, h
}

// TestClientPeekOutputConsume: a send loop whose transport takes 7 bytes
// at a time sends exactly what Fill gives a twin client, and the hub gets
// every message.
func TestClientPeekOutputConsume(t *testing.T) {
	c, ref, conn, h := twinProducers(t)
	sent := peekAll(t, c, fill(t, ref))
	if _, err := conn.Write(sent); err != nil {
		t.Fatalf("conn Write: %v", err)
	}
	if info, err := h.Session("sink"); err != nil || info.Pending != 40 {
		t.Fatalf("sink: %+v %v", info, err)
	}
}

func TestClientConsumeErrors(t *testing.T) {
	c, err := tern.NewClient("peek", []byte("token"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.PeekOutput(); !errors.Is(err, tern.ErrState) {
		t.Fatalf("PeekOutput without a transport: %v, want ErrState", err)
	}
	if err := c.Consume(1); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Consume with nothing held: %v, want ErrInvalid", err)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	data, err := c.PeekOutput() // the HELLO
	if err != nil || len(data) < 3 {
		t.Fatalf("PeekOutput: %q %v", data, err)
	}
	for _, n := range []int{-1, len(data) + 1} {
		if err := c.Consume(n); !errors.Is(err, tern.ErrInvalid) {
			t.Fatalf("Consume(%d): %v, want ErrInvalid", n, err)
		}
	}
	if err := c.Consume(0); err != nil {
		t.Fatalf("Consume(0): %v", err)
	}
	if err := c.Consume(2); err != nil {
		t.Fatalf("Consume(2): %v", err)
	}
	if rest, err := c.PeekOutput(); err != nil || !bytes.Equal(rest, data[2:]) {
		t.Fatalf("after Consume(2): %q %v, want %q", rest, err, data[2:])
	}
	// A lost transport drops what was held; the next one sends a whole
	// HELLO.
	if err := c.ConnLost(); err != nil || c.WantWrite() {
		t.Fatalf("ConnLost: %v, WantWrite %v", err, c.WantWrite())
	}
	if err := c.Consume(1); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("Consume after ConnLost: %v, want ErrInvalid", err)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	if again, err := c.PeekOutput(); err != nil || !bytes.Equal(again, data) {
		t.Fatalf("HELLO after reconnect: %q %v, want %q", again, err, data)
	}
	c.Close()
	if _, err := c.PeekOutput(); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("PeekOutput after Close: %v", err)
	}
	if err := c.Consume(0); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Consume after Close: %v", err)
	}
}

// TestClientPeekOutputGoodbye: a closing client is closed once its GOAWAY
// is consumed.
func TestClientPeekOutputGoodbye(t *testing.T) {
	h := newHub(t, nil)
	conn, _ := h.NewConn()
	defer conn.Close()
	c, _ := tern.NewClient("bye", nil, nil)
	defer c.Close()
	c.NextEvent()
	c.Connect()
	shuttle(t, c, conn)
	c.NextEvent()
	if err := c.Goodbye(); err != nil {
		t.Fatal(err)
	}
	var sent []byte
	for {
		data, err := c.PeekOutput()
		if errors.Is(err, tern.ErrClosed) {
			break
		}
		if err != nil || data == nil {
			t.Fatalf("PeekOutput while closing: %q %v", data, err)
		}
		if err := c.Consume(len(data)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, data...)
	}
	if len(sent) == 0 {
		t.Fatal("no GOAWAY")
	}
	e, ok := c.NextEvent()
	if !ok || e.Type != tern.ClientEventDisconnected || tern.GoAwayReason(e.Reason) != tern.GoAwayClient {
		t.Fatalf("event %+v %v, want disconnected (client)", e, ok)
	}
	if _, err := conn.Write(sent); err != nil && !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("conn Write: %v", err)
	}
	if !conn.Closed() {
		t.Fatal("the hub's connection did not see the GOAWAY")
	}
}
