package tern

import (
	"context"
	"errors"
	"io"
	"time"
)

// A Dialer opens a transport to the server for Client.Run: a TCP
// connection (net.Dialer.DialContext), TLS, or anything that carries bytes
// both ways.
type Dialer func(ctx context.Context) (io.ReadWriteCloser, error)

// ErrGaveUp is returned by Client.Run when the client gave up reconnecting
// (ClientOptions.MaxAttempts failures in a row).
var ErrGaveUp = errors.New("tern: client gave up reconnecting")

// Run drives the client over transports from dial until ctx is done: it
// opens a transport when the client asks (ClientEventConnect), moves the
// bytes both ways, runs the client's deadlines, closes the transport on
// ClientEventDisconnected, and passes every event to handle (on Run's
// goroutine; handle may call Ack and Publish). When ctx is done Run says
// goodbye to the server (waiting up to a second for the GOAWAY to go out)
// and returns ctx.Err(). It returns ErrGaveUp after ClientEventGiveUp. Run
// one per client.
func (c *Client) Run(ctx context.Context, dial Dialer, handle func(ClientEvent)) error {
	type chunk struct {
		b   []byte
		err error
		gen int
	}
	in := make(chan chunk, 4)
	quit := make(chan struct{})
	defer close(quit)
	var t io.ReadWriteCloser
	gen := 0
	closeT := func() {
		if t != nil {
			t.Close()
			t = nil
		}
	}
	defer closeT()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var bye <-chan time.Time // the goodbye's deadline, once ctx is done
	done := ctx.Done()
	for {
		// Events first: they say when to open and close transports.
		for {
			ev, ok := c.NextEvent()
			if !ok {
				break
			}
			switch ev.Type {
			case ClientEventConnect:
				if bye != nil {
					break
				}
				tr, err := dial(ctx)
				if err != nil {
					c.ConnLost()
					break
				}
				if err := c.Connect(); err != nil {
					tr.Close()
					if errors.Is(err, ErrClosed) {
						return ctx.Err()
					}
					return err
				}
				t = tr
				gen++
				go func(r io.Reader, g int) {
					for {
						b := make([]byte, 16<<10)
						n, err := r.Read(b)
						select {
						case in <- chunk{b[:n], err, g}:
						case <-quit:
							return
						}
						if err != nil {
							return
						}
					}
				}(t, gen)
			case ClientEventDisconnected:
				closeT()
				if bye != nil {
					return ctx.Err()
				}
			}
			if handle != nil {
				handle(ev)
			}
			if ev.Type == ClientEventGiveUp {
				return ErrGaveUp
			}
		}
		if t != nil {
			if _, err := c.WriteTo(t); err != nil {
				var te *Error
				if !errors.As(err, &te) { // the transport failed
					c.ConnLost()
					continue
				}
			}
		}
		wait := time.Hour
		if exp, ok := c.Expiry(); ok {
			if now := c.clock(); exp <= now {
				wait = 0
			} else if d := exp - now; d < wait {
				wait = d
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-done:
			done = nil
			if t == nil {
				c.Goodbye()
				return ctx.Err()
			}
			c.Goodbye()
			bye = time.After(time.Second)
		case <-bye:
			return ctx.Err()
		case ch := <-in:
			if ch.gen != gen || t == nil {
				break
			}
			if len(ch.b) > 0 {
				c.Write(ch.b)
			}
			if ch.err != nil {
				c.ConnLost()
			}
		case <-timer.C:
			c.HandleExpiry()
		case <-c.kick:
		}
	}
}
