// Command ssed is a Server-Sent Events push server on net/http and the Go
// binding of libtern: browsers (EventSource) or any HTTP client subscribe
// to a session's stream, producers publish over HTTP, receivers ack.
//
//	GET  /events?session=KEY         the session's stream (text/event-stream;
//	                                 Last-Event-ID or ?seq=N resumes)
//	POST /publish?session=KEY[&id=ID&priority=high|normal|low]
//	                                 the request body is the payload
//	POST /ack?session=KEY&seq=N      acks every message up to seq N
//	GET  /stats                      the hub's counters, as JSON
//
// Usage: ssed [-addr 127.0.0.1:8080]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"libtern.dev/bindings/go/tern"
)

// Server serves the push endpoints over one hub.
type Server struct {
	Hub *tern.Hub
	// Heartbeat is the SSE heartbeat interval; 0 takes the hub's.
	Heartbeat time.Duration
}

// NewServer creates a server with a hub of options o (nil: defaults).
func NewServer(o *tern.Options) (*Server, error) {
	h, err := tern.NewHub(o)
	if err != nil {
		return nil, err
	}
	return &Server{Hub: h}, nil
}

// Handler returns the server's HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/events", s.events)
	mux.HandleFunc("/publish", s.publish)
	mux.HandleFunc("/ack", s.ack)
	mux.HandleFunc("/stats", s.stats)
	return mux
}

// Run drives the hub's deadlines and takes its events until ctx is done.
func (s *Server) Run(ctx context.Context) {
	go s.Hub.Run(ctx)
	for {
		ev, err := s.Hub.WaitEvent(ctx)
		if err != nil {
			return
		}
		switch ev.Type {
		case tern.EventConnClosed, tern.EventConnDead:
			// The stream's handler sees its connection end in Pump and
			// closes it; nothing to do here but note it.
		case tern.EventSessionExpired:
			log.Printf("session %q expired with %d messages", ev.SessionKey, ev.Count)
		}
	}
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	opts := tern.StreamOptions{Framing: tern.FramingSSE, Key: r.URL.Query().Get("session"), Heartbeat: s.Heartbeat}
	if id := strings.TrimSpace(r.Header.Get("Last-Event-ID")); id != "" {
		opts.ResumeEpoch, opts.ResumeSeq, _ = tern.ParseResume(id)
	} else if q := r.URL.Query().Get("seq"); q != "" {
		opts.ResumeEpoch, opts.ResumeSeq, _ = tern.ParseResume(q)
	}
	conn, err := s.Hub.NewStream(opts)
	if err != nil {
		httpError(w, err)
		return
	}
	defer conn.Close()
	w.Header().Set("Content-Type", tern.FramingSSE.ContentType())
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Pump writes and flushes until the client goes (the request's
	// context ends) or the hub ends the stream.
	conn.Pump(r.Context(), w)
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg := &tern.Message{ID: []byte(q.Get("id")), Payload: body, Priority: tern.PriorityNormal,
		ContentType: r.Header.Get("Content-Type")}
	switch q.Get("priority") {
	case "high":
		msg.Priority = tern.PriorityHigh
	case "low":
		msg.Priority = tern.PriorityLow
	}
	res, err := s.Hub.Publish(q.Get("session"), msg)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": string(res.ID)})
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	seq, err := strconv.ParseUint(q.Get("seq"), 10, 64)
	if err != nil {
		http.Error(w, "bad seq", http.StatusBadRequest)
		return
	}
	n, err := s.Hub.Ack(q.Get("session"), seq)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"acked": n})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Hub.Stats())
}

// httpError maps the library's errors to HTTP statuses.
func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, tern.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, tern.ErrTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, tern.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, tern.ErrDuplicate):
		code = http.StatusConflict
	case errors.Is(err, tern.ErrFull), errors.Is(err, tern.ErrLimit):
		code = http.StatusServiceUnavailable
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// serve runs the server on ln until ctx is done, then tells the streams to
// go away and shuts down.
func serve(ctx context.Context, ln net.Listener, s *Server) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go s.Run(runCtx)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Hub.GoAwayAll(tern.GoAwayRestart, 5*time.Second)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	stop()
	s.Hub.Close()
	return err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s, err := NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("ssed on http://%s", ln.Addr())
	if err := serve(ctx, ln, s); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
