package tern

import (
	"context"
	"errors"
	"io"
	"time"
)

// ServeConn serves one binary-framing transport (a TCP connection, say)
// on a new connection of the hub: what rw reads goes to Conn.Write, and
// Conn.Pump writes the connection's output to rw. It returns once the
// connection ended (nil: the hub or the peer closed it and its output was
// written), ctx is done (ctx.Err()) or rw failed; the tern connection is
// deleted then, the transport is left to the caller to close. Hub.Run must
// be running. accepted, when not nil, is called with the new connection
// before the first byte is read (to AllowPublish it, say).
func (h *Hub) ServeConn(ctx context.Context, rw io.ReadWriter, accepted func(*Conn)) error {
	conn, err := h.NewConn()
	if err != nil {
		return err
	}
	defer conn.Close()
	if accepted != nil {
		accepted(conn)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		err := feed(conn, rw)
		readErr <- err
		if !errors.Is(err, errFed) {
			cancel() // the transport's read side ended: stop the pump
		}
	}()
	err = conn.Pump(pctx, rw)
	cancel()
	switch {
	case err == nil: // the connection ended and its output was written
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.Canceled): // the reader stopped
		if rerr := <-readErr; !errors.Is(rerr, io.EOF) {
			return rerr
		}
		return nil
	}
	return err
}

// errFed marks a connection that refused input: it is closed, and the
// pump writes its GOAWAY and ends by itself.
var errFed = errors.New("tern: connection closed on input")

// feed moves bytes from r into conn until r fails or conn refuses them.
func feed(conn *Conn, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		p := buf[:n]
		for len(p) > 0 {
			m, werr := conn.Write(p)
			p = p[m:]
			if errors.Is(werr, ErrBackpressure) {
				// The connection owes PUBACKs: the pump writes them,
				// then it takes the rest.
				time.Sleep(time.Millisecond)
				continue
			}
			if werr != nil {
				return errFed
			}
		}
		if err != nil {
			return err
		}
	}
}
