package tern_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

func newWorkers(t *testing.T, o tern.WorkersOptions) (*tern.Workers, *net.TCPAddr) {
	t.Helper()
	w, err := tern.NewWorkers(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	addr, err := w.Listen("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if addr.Port == 0 || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("bound %v", addr)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w, addr
}

// receiver is a Client run over TCP against the workers, collecting the
// payloads it gets (and acks them: AckEvery 1).
type receiver struct {
	mu        sync.Mutex
	got       []string
	reasons   []int // of the Disconnected events
	connected chan struct{}
	discon    chan struct{}
	done      chan error
}

func runReceiver(t *testing.T, addr *net.TCPAddr, key string, token []byte) *receiver {
	t.Helper()
	co := tern.DefaultClientOptions()
	co.AckEvery = 1
	co.MaxAttempts = 1
	cl, err := tern.NewClient(key, token, &co)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &receiver{connected: make(chan struct{}), discon: make(chan struct{}, 64),
		done: make(chan error, 1)}
	var once sync.Once
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr.String())
	}
	go func() {
		r.done <- cl.Run(ctx, dial, func(ev tern.ClientEvent) {
			switch ev.Type {
			case tern.ClientEventConnected:
				once.Do(func() { close(r.connected) })
			case tern.ClientEventMessage:
				r.mu.Lock()
				r.got = append(r.got, string(ev.Payload))
				r.mu.Unlock()
			case tern.ClientEventDisconnected:
				r.mu.Lock()
				r.reasons = append(r.reasons, ev.Reason)
				r.mu.Unlock()
				select {
				case r.discon <- struct{}{}:
				default:
				}
			}
		})
		cl.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *receiver) waitConnected(t *testing.T) {
	t.Helper()
	select {
	case <-r.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("no WELCOME")
	}
}

func (r *receiver) payloads() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// Receivers connect over TCP to workers on two threads, each is moved to
// its session's worker, and gets what several goroutines published to it,
// in the order of each goroutine, acking as it goes.
func TestWorkersDeliver(t *testing.T) {
	var done, failed int64
	w, addr := newWorkers(t, tern.WorkersOptions{Threads: 2,
		Done: func(worker int, cookie uint64, err error) {
			if worker < 0 || worker > 1 || cookie == 0 {
				t.Errorf("done(%d, %d)", worker, cookie)
			}
			if err != nil {
				atomic.AddInt64(&failed, 1)
			}
			atomic.AddInt64(&done, 1)
		}})
	if w.Threads() != 2 {
		t.Fatalf("threads %d", w.Threads())
	}
	keys := []string{"alice", "bob", "carol", "dave", "erin"}
	rs := make([]*receiver, len(keys))
	for i, k := range keys {
		rs[i] = runReceiver(t, addr, k, nil)
	}
	for _, r := range rs {
		r.waitConnected(t)
	}
	const producers, each = 6, 40
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k := keys[(p+i)%len(keys)]
				err := w.Publish(k, &tern.Message{
					ID:       []byte(fmt.Sprintf("p%d-%d", p, i)),
					Payload:  []byte(fmt.Sprintf("%d:%03d", p, i)),
					Priority: tern.PriorityNormal,
					Cookie:   uint64(p*each + i + 1),
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	total := 0
	waitFor(t, "every message", func() bool {
		total = 0
		for _, r := range rs {
			total += len(r.payloads())
		}
		return total >= producers*each
	})
	waitFor(t, "every done", func() bool { return atomic.LoadInt64(&done) == producers*each })
	if failed != 0 {
		t.Fatalf("%d publishes failed", failed)
	}
	for ki, r := range rs {
		got := r.payloads()
		// each producer's messages to one session arrive in its order
		last := map[string]string{}
		for _, g := range got {
			p := strings.SplitN(g, ":", 2)[0]
			if g <= last[p] {
				t.Fatalf("%s: %q after %q", keys[ki], g, last[p])
			}
			last[p] = g
		}
		var want []string
		for p := 0; p < producers; p++ {
			for i := 0; i < each; i++ {
				if (p+i)%len(keys) == ki {
					want = append(want, fmt.Sprintf("%d:%03d", p, i))
				}
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s got %d messages, want %d", keys[ki], len(got), len(want))
		}
	}
}

// A message published before a receiver comes, and before Start, waits
// for it; Stop keeps the hubs, and Start runs them again.
func TestWorkersQueueAndRestart(t *testing.T) {
	w, err := tern.NewWorkers(tern.WorkersOptions{Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Publish("k", &tern.Message{Payload: []byte("early")}); err != nil {
		t.Fatal(err)
	}
	addr, err := w.Listen("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); !errors.Is(err, tern.ErrState) {
		t.Fatalf("second Start: %v", err)
	}
	if _, err := w.Listen("", 0); !errors.Is(err, tern.ErrState) {
		t.Fatalf("Listen while running: %v", err)
	}
	w.Stop()
	w.Stop()
	if err := w.Publish("k", &tern.Message{Payload: []byte("stopped")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	r := runReceiver(t, addr, "k", nil)
	waitFor(t, "both messages", func() bool { return len(r.payloads()) == 2 })
	if got := r.payloads(); strings.Join(got, ",") != "early,stopped" {
		t.Fatalf("got %q", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Publish("k", &tern.Message{}); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if err := w.Start(); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if _, err := w.Listen("", 0); !errors.Is(err, tern.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
	w.Stop()
}

func TestWorkersErrors(t *testing.T) {
	for _, n := range []int{-1, 1025} {
		if _, err := tern.NewWorkers(tern.WorkersOptions{Threads: n}); !errors.Is(err, tern.ErrInvalid) {
			t.Errorf("Threads %d: %v", n, err)
		}
	}
	bad := tern.DefaultOptions()
	bad.MaxPayload = -1
	if _, err := tern.NewWorkers(tern.WorkersOptions{Hub: &bad}); !errors.Is(err, tern.ErrInvalid) {
		t.Errorf("bad hub options: %v", err)
	}
	w, err := tern.NewWorkers(tern.WorkersOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Threads() != 1 {
		t.Fatalf("threads %d", w.Threads())
	}
	for _, tc := range []struct {
		host string
		port int
	}{{"localhost", 0}, {"127.0.0.1", 65536}, {"127.0.0.1", -1}, {"::1%", 0}} {
		if _, err := w.Listen(tc.host, tc.port); !errors.Is(err, tern.ErrInvalid) {
			t.Errorf("Listen(%q, %d): %v", tc.host, tc.port, err)
		}
	}
	// A port taken by a socket without SO_REUSEPORT.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := w.Listen("", l.Addr().(*net.TCPAddr).Port); !errors.Is(err, tern.ErrStore) {
		t.Errorf("Listen on a busy port: %v", err)
	}
	for _, tc := range []struct {
		key string
		m   *tern.Message
		err error
	}{
		{"", &tern.Message{}, tern.ErrInvalid},
		{strings.Repeat("k", tern.MaxSessionKey+1), &tern.Message{}, tern.ErrTooLarge},
		{"k", &tern.Message{ID: make([]byte, tern.MaxID+1)}, tern.ErrTooLarge},
		{"k", &tern.Message{ContentType: "a\x00b"}, tern.ErrInvalid},
	} {
		if err := w.Publish(tc.key, tc.m); !errors.Is(err, tc.err) {
			t.Errorf("Publish(%.10q, %+v): %v, want %v", tc.key, tc.m, err, tc.err)
		}
	}
}
