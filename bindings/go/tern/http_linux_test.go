package tern_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// httpWorkers runs workers whose HTTP handler serves a small push API:
// GET /hello, POST /publish?session=K, GET /events?session=K&token=T (SSE),
// GET /poll?session=K (a short poll), GET /ws?session=K (WebSocket),
// /panic; anything else is left unanswered (404).
func httpWorkers(t *testing.T, threads int, secret []byte) (*tern.Workers, string) {
	t.Helper()
	var w *tern.Workers
	var mu sync.Mutex
	handler := func(r *tern.HTTPRequest) {
		q := r.Query()
		session := q.Get("session")
		switch r.Path() {
		case "/hello":
			r.ResponseHeader().Set("X-Worker", fmt.Sprint(r.Worker()))
			ua, _ := r.Header("user-agent")
			if err := r.Respond(200, "text/plain", []byte("hello "+ua)); err != nil {
				t.Error(err)
			}
			if err := r.Respond(200, "", nil); !errors.Is(err, tern.ErrState) {
				t.Errorf("second answer: %v", err)
			}
		case "/publish":
			if r.Method() != "POST" {
				r.Error(405, "")
				return
			}
			mu.Lock()
			ww := w
			mu.Unlock()
			if err := ww.Publish(session, &tern.Message{Payload: r.Body()}); err != nil {
				r.Error(400, err.Error())
				return
			}
			r.Respond(202, "application/json", []byte(`{"ok":true}`))
		case "/events":
			if err := tern.TokenCheck(q.Get("token"), secret, session, time.Now()); err != nil {
				r.Error(401, "bad token")
				return
			}
			r.ResponseHeader().Set("Access-Control-Allow-Origin", "*")
			if err := r.Stream(tern.StreamOptions{Framing: tern.FramingSSE, Key: session}); err != nil {
				t.Error(err)
			}
		case "/poll":
			if err := r.Stream(tern.StreamOptions{Framing: tern.FramingPoll, Key: session, ShortPoll: true}); err != nil {
				t.Error(err)
			}
		case "/ws":
			if err := r.WebSocket(tern.StreamOptions{Framing: tern.FramingWSJSON, Key: session}); err != nil && !errors.Is(err, tern.ErrProto) {
				t.Error(err)
			}
		case "/badstream":
			if err := r.Stream(tern.StreamOptions{Framing: tern.FramingSSE}); !errors.Is(err, tern.ErrInvalid) {
				t.Errorf("stream without a key: %v", err)
			}
			if err := r.Stream(tern.StreamOptions{Framing: tern.FramingWSJSON, Key: "k"}); !errors.Is(err, tern.ErrInvalid) {
				t.Errorf("stream of a WebSocket framing: %v", err)
			}
			r.ResponseHeader().Set("Bad", "a\r\nb")
			if err := r.Respond(200, "", nil); !errors.Is(err, tern.ErrInvalid) {
				t.Errorf("bad header: %v", err)
			}
			r.ResponseHeader().Del("Bad")
			r.Error(418, "")
		case "/panic":
			panic("handler panic (expected by the test)")
		}
	}
	var err error
	w, err = tern.NewWorkers(tern.WorkersOptions{Threads: threads, HTTP: handler})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	addr, err := w.ListenHTTP("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ListenHTTP("", 0); !errors.Is(err, tern.ErrState) {
		t.Fatalf("ListenHTTP while running: %v", err)
	}
	return w, "http://" + addr.String()
}

func TestWorkersHTTPRespond(t *testing.T) {
	if tern.FramingWSBin.String() != "ws-bin" || tern.FramingWSJSON.String() != "ws-json" {
		t.Fatal(tern.FramingWSBin, tern.FramingWSJSON)
	}
	_, base := httpWorkers(t, 2, nil)
	req, _ := http.NewRequest("GET", base+"/hello", nil)
	req.Header.Set("User-Agent", "gotest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello gotest" ||
		resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Worker") == "" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	log.SetOutput(io.Discard) // the panic's report
	defer log.SetOutput(os.Stderr)
	for path, want := range map[string]int{"/nothing": 404, "/panic": 500, "/badstream": 418} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, err = http.Get(base + "/publish?session=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET /publish: %d", resp.StatusCode)
	}
}

// SSE streams over several workers: each request is moved to its
// session's worker, gets what was published to it (over HTTP, from
// handlers on any worker), and a bad token is refused.
func TestWorkersHTTPStream(t *testing.T) {
	secret := []byte("sse")
	_, base := httpWorkers(t, 3, secret)
	sessions := []string{"s1", "s2", "s3", "s4"}
	type line struct {
		session, text string
	}
	lines := make(chan line, 100)
	for _, s := range sessions {
		tok, err := tern.TokenMake(secret, s, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(base + "/events?session=" + s + "&token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tern.FramingSSE.ContentType() ||
			resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %v", s, resp.StatusCode, resp.Header)
		}
		go func(s string, body io.Reader) {
			sc := bufio.NewScanner(body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					lines <- line{s, sc.Text()}
				}
			}
		}(s, resp.Body)
	}
	old, _ := tern.TokenMake(secret, "s1", time.Now().Add(-time.Minute))
	for _, bad := range []string{"", old, "1.2"} {
		resp, err := http.Get(base + "/events?session=s1&token=" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("token %q: %d", bad, resp.StatusCode)
		}
	}
	for _, s := range sessions {
		resp, err := http.Post(base+"/publish?session="+s, "text/plain", strings.NewReader("to "+s))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("publish: %d", resp.StatusCode)
		}
	}
	got := map[string]string{}
	for len(got) < len(sessions) {
		select {
		case l := <-lines:
			got[l.session] = l.text
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v", got)
		}
	}
	for _, s := range sessions {
		if !strings.Contains(got[s], `"data":"to `+s+`"`) {
			t.Fatalf("%s got %q", s, got[s])
		}
	}
}

// A short poll answers 204 with nothing pending, then the JSON array.
func TestWorkersHTTPPoll(t *testing.T) {
	w, base := httpWorkers(t, 2, nil)
	get := func() (int, string) {
		resp, err := http.Get(base + "/poll?session=p")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 204 {
		t.Fatalf("empty poll: %d %q", code, body)
	}
	if err := w.Publish("p", &tern.Message{Payload: []byte("polled")}); err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	waitFor(t, "the poll's message", func() bool {
		code, body = get()
		return code == 200
	})
	if !strings.HasPrefix(body, "[") || !strings.Contains(body, `"data":"polled"`) {
		t.Fatalf("poll: %d %q", code, body)
	}
}

// A WebSocket upgrade (tern.json) on the session's worker gets the
// session's messages as text frames; a request that is no upgrade is
// answered 400 by the server.
func TestWorkersHTTPWebSocket(t *testing.T) {
	w, base := httpWorkers(t, 2, nil)
	resp, err := http.Get(base + "/ws?session=w")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 && resp.StatusCode != 426 {
		t.Fatalf("not an upgrade: %d", resp.StatusCode)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /ws?session=w HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Protocol: tern.json\r\n\r\n")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("upgrade: %q %v", status, err)
	}
	accept := ""
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
		if strings.HasPrefix(strings.ToLower(l), "sec-websocket-accept:") {
			accept = strings.TrimSpace(l[len("sec-websocket-accept:"):])
		}
	}
	if accept != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %q", accept)
	}
	if err := w.Publish("w", &tern.Message{Payload: []byte("over ws")}); err != nil {
		t.Fatal(err)
	}
	// Server frames are unmasked: skip anything but text frames.
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			var e [2]byte
			io.ReadFull(br, e[:])
			n = int(e[0])<<8 | int(e[1])
		} else if n == 127 {
			t.Fatal("huge frame")
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		if h[0]&0x0f == 1 && strings.Contains(string(p), `"data":"over ws"`) {
			return
		}
	}
}

// wsDial upgrades a connection to /ws?session=key offering protocol.
func wsDial(t *testing.T, base, key, protocol string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /ws?session=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Protocol: %s\r\n\r\n", key, protocol)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp.StatusCode
}

// wsWrite sends p as one masked binary frame.
func wsWrite(c net.Conn, p []byte) error {
	h := []byte{0x82}
	switch {
	case len(p) < 126:
		h = append(h, 0x80|byte(len(p)))
	default:
		h = append(h, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	mask := [4]byte{1, 2, 3, 4}
	h = append(h, mask[:]...)
	for i, b := range p {
		h = append(h, b^mask[i%4])
	}
	_, err := c.Write(h)
	return err
}

// wsRead returns the next data frame's opcode and payload.
func wsRead(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, nil, err
		}
		n = int(e[0])<<8 | int(e[1])
	} else if n == 127 {
		return 0, nil, errors.New("huge frame")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return h[0] & 0x0f, p, err
}

// A WebSocket of the binary framing (tern.bin) carries a Client's HELLO,
// MSG and ACK on several workers; one whose HELLO names a session of
// another worker than the request's is refused.
func TestWorkersHTTPWebSocketBinary(t *testing.T) {
	w, base := httpWorkers(t, 2, nil)
	var other string
	for i := 0; other == ""; i++ {
		if k := fmt.Sprint("o", i); tern.ShardOf(k, 2) != tern.ShardOf("wb", 2) {
			other = k
		}
	}
	run := func(urlKey, helloKey string) (got []string, reason int) {
		c, br, code := wsDial(t, base, urlKey, "tern.bin")
		if code != 101 {
			t.Fatalf("upgrade: %d", code)
		}
		co := tern.DefaultClientOptions()
		co.AckEvery = 1
		cl, err := tern.NewClient(helloKey, nil, &co)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		cl.NextEvent()
		if err := cl.Connect(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for {
			n, _ := cl.Fill(buf)
			if n > 0 {
				if err := wsWrite(c, buf[:n]); err != nil {
					t.Fatal(err)
				}
				continue
			}
			for ev, ok := cl.NextEvent(); ok; ev, ok = cl.NextEvent() {
				switch ev.Type {
				case tern.ClientEventConnected:
					if err := w.Publish(helloKey, &tern.Message{Payload: []byte("bin")}); err != nil {
						t.Fatal(err)
					}
				case tern.ClientEventMessage:
					got = append(got, string(ev.Payload))
				case tern.ClientEventDisconnected:
					return got, ev.Reason
				}
			}
			if len(got) > 0 {
				if n, _ := cl.Fill(buf); n > 0 { // the ACK
					wsWrite(c, buf[:n])
				}
				return got, -1
			}
			op, p, err := wsRead(br)
			if err != nil {
				cl.ConnLost()
				continue
			}
			if op == 2 {
				cl.Write(p)
			}
		}
	}
	if got, _ := run("wb", "wb"); strings.Join(got, ",") != "bin" {
		t.Fatalf("got %q", got)
	}
	if got, reason := run("wb", other); len(got) != 0 || reason != int(tern.GoAwayRejected) {
		t.Fatalf("HELLO for another worker's session: %q, reason %d", got, reason)
	}
}
