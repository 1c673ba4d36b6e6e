package tern_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

func TestTokens(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_700_000_000, 0)
	tok, err := tern.TokenMake(secret, "alice", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "1700003600.") || len(tok) != len("1700003600.")+64 || len(tok) > tern.MaxTokenLen {
		t.Fatalf("token %q", tok)
	}
	if err := tern.TokenCheck(tok, secret, "alice", now); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	again, _ := tern.TokenMake(secret, "alice", now.Add(time.Hour))
	if again != tok {
		t.Fatalf("not deterministic: %q %q", again, tok)
	}
	for _, tc := range []struct {
		name    string
		token   string
		secret  []byte
		session string
		now     time.Time
		want    error
	}{
		{"expired", tok, secret, "alice", now.Add(time.Hour), tern.ErrState},
		{"long expired", tok, secret, "alice", now.Add(48 * time.Hour), tern.ErrState},
		{"wrong session", tok, secret, "bob", now, tern.ErrInvalid},
		{"wrong secret", tok, []byte("other"), "alice", now, tern.ErrInvalid},
		{"tampered expiry", "1800003600" + tok[10:], secret, "alice", now, tern.ErrInvalid},
		{"tampered mac", tok[:len(tok)-1] + flip(tok[len(tok)-1:]), secret, "alice", now, tern.ErrInvalid},
		{"malformed", "garbage", secret, "alice", now, tern.ErrInvalid},
		{"empty", "", secret, "alice", now, tern.ErrInvalid},
	} {
		err := tern.TokenCheck(tc.token, tc.secret, tc.session, tc.now)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := tern.TokenMake(secret, "alice", time.Unix(0, 0)); !errors.Is(err, tern.ErrInvalid) {
		t.Fatalf("expiry at the epoch: %v", err)
	}
	// An empty secret and an empty session are allowed.
	e, err := tern.TokenMake(nil, "", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := tern.TokenCheck(e, nil, "", now); err != nil {
		t.Fatal(err)
	}
}

// Workers with an Authorize that checks subscriber tokens: the receiver
// with a good token gets its messages over TCP, those with a token for
// another session, an expired one or none are refused (GOAWAY REJECTED).
func TestWorkersAuthorizeTokens(t *testing.T) {
	secret := []byte("k3y")
	var asked int32
	w, addr := newWorkers(t, tern.WorkersOptions{Threads: 2,
		Authorize: func(session string, token []byte) bool {
			atomic.AddInt32(&asked, 1)
			return tern.TokenCheck(string(token), secret, session, time.Now()) == nil
		}})
	good, err := tern.TokenMake(secret, "alice", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bobs, _ := tern.TokenMake(secret, "bob", time.Now().Add(time.Hour))
	old, _ := tern.TokenMake(secret, "carol", time.Now().Add(-time.Hour))
	ok := runReceiver(t, addr, "alice", []byte(good))
	ok.waitConnected(t)
	for _, tc := range []struct{ key, token string }{
		{"dave", bobs}, {"carol", old}, {"erin", ""},
	} {
		r := runReceiver(t, addr, tc.key, []byte(tc.token))
		select {
		case <-r.discon:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not refused", tc.key)
		}
		r.mu.Lock()
		reason, got := r.reasons[0], len(r.got)
		r.mu.Unlock()
		if reason != int(tern.GoAwayRejected) || got != 0 {
			t.Fatalf("%s: reason %d, %d messages", tc.key, reason, got)
		}
		select {
		case <-r.connected:
			t.Fatalf("%s was welcomed", tc.key)
		default:
		}
	}
	if err := w.Publish("alice", &tern.Message{Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's message", func() bool { return len(ok.payloads()) == 1 })
	if n := atomic.LoadInt32(&asked); n != 4 {
		t.Fatalf("Authorize called %d times", n)
	}
}

// flip returns another hex digit than d.
func flip(d string) string {
	if d == "0" {
		return "1"
	}
	return "0"
}
