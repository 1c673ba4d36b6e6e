package tern_test

import (
	"bufio"
	"errors"
	"io"
	"time"
)

// linePipe is an in-memory pipe whose reader times out.
type linePipe struct {
	lines chan string
	err   chan error
}

type pipeWriter struct{ w *io.PipeWriter }

func (p pipeWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

func ioPipe() (*linePipe, io.Writer) {
	r, w := io.Pipe()
	lp := &linePipe{lines: make(chan string, 1024), err: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lp.lines <- sc.Text()
		}
		lp.err <- sc.Err()
	}()
	return lp, pipeWriter{w}
}

func (lp *linePipe) ReadLine(timeout time.Duration) (string, error) {
	select {
	case l := <-lp.lines:
		return l, nil
	case err := <-lp.err:
		return "", err
	case <-time.After(timeout):
		return "", errors.New("timeout")
	}
}
