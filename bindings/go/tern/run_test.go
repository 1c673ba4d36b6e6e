package tern_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// tcpServer serves the hub's binary framing on 127.0.0.1 with ServeConn.
type tcpServer struct {
	ln    net.Listener
	mu    sync.Mutex
	socks []net.Conn
	wg    sync.WaitGroup
}

func startTCP(t *testing.T, ctx context.Context, h *tern.Hub, accepted func(*tern.Conn)) *tcpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &tcpServer{ln: ln}
	go func() {
		for {
			sock, err := ln.Accept()
			if err != nil {
				return
			}
			srv.mu.Lock()
			srv.socks = append(srv.socks, sock)
			srv.mu.Unlock()
			srv.wg.Add(1)
			go func() {
				defer srv.wg.Done()
				defer sock.Close()
				h.ServeConn(ctx, sock, accepted)
			}()
		}
	}()
	return srv
}

// dropAll closes every server-side socket, as a network failure would.
func (s *tcpServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.socks {
		c.Close()
	}
	s.socks = nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClientRunOverTCP(t *testing.T) {
	h := newHub(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	srv := startTCP(t, ctx, h, nil)
	defer srv.ln.Close()

	co := tern.DefaultClientOptions()
	co.BackoffBase = 10 * time.Millisecond
	co.BackoffCap = 50 * time.Millisecond
	co.AckDelay = 20 * time.Millisecond
	cl, err := tern.NewClient("tcp-user", nil, &co)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	got := map[string]bool{}
	connected := 0
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.ln.Addr().String())
	}
	cctx, ccancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() {
		runErr <- cl.Run(cctx, dial, func(ev tern.ClientEvent) {
			mu.Lock()
			defer mu.Unlock()
			switch ev.Type {
			case tern.ClientEventMessage:
				got[string(ev.Payload)] = true
			case tern.ClientEventConnected:
				connected++
			}
		})
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	conns := func() int { mu.Lock(); defer mu.Unlock(); return connected }
	waitFor(t, "connected", func() bool { return conns() == 1 })
	for i := 0; i < 100; i++ {
		mustPublish(t, h, "tcp-user", &tern.Message{Payload: []byte(fmt.Sprintf("m%d", i))})
	}
	waitFor(t, "100 messages", func() bool { return count() == 100 })
	waitFor(t, "100 acks", func() bool { return h.Stats().Acked == 100 })

	// The network drops: the client reconnects by itself and resumes.
	srv.dropAll()
	for i := 100; i < 150; i++ {
		mustPublish(t, h, "tcp-user", &tern.Message{Payload: []byte(fmt.Sprintf("m%d", i))})
	}
	waitFor(t, "a reconnect", func() bool { return conns() >= 2 })
	waitFor(t, "150 messages", func() bool { return count() == 150 })
	waitFor(t, "150 acks", func() bool { return h.Stats().Acked == 150 })
	if st := cl.Stats(); st.Reconnects == 0 || st.Delivered != 150 {
		t.Fatalf("client stats %+v", st)
	}

	// Cancel: the client says goodbye, the hub sees GoAwayClient.
	ccancel()
	select {
	case err := <-runErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	waitFor(t, "the goodbye", func() bool {
		for {
			ev, ok := h.NextEvent()
			if !ok {
				return false
			}
			if ev.Type == tern.EventConnClosed && tern.GoAwayReason(ev.Reason) == tern.GoAwayClient {
				return true
			}
		}
	})
	cancel()
	srv.ln.Close()
	srv.dropAll()
	srv.wg.Wait()
}

func TestClientRunGivesUp(t *testing.T) {
	co := tern.DefaultClientOptions()
	co.BackoffBase = time.Millisecond
	co.BackoffCap = 2 * time.Millisecond
	co.MaxAttempts = 3
	cl, _ := tern.NewClient("nobody", nil, &co)
	defer cl.Close()
	dials := 0
	err := cl.Run(context.Background(), func(ctx context.Context) (io.ReadWriteCloser, error) {
		dials++
		return nil, errors.New("refused")
	}, nil)
	if !errors.Is(err, tern.ErrGaveUp) || dials != 3 {
		t.Fatalf("Run: %v after %d dials", err, dials)
	}
}
