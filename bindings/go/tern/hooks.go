package tern

/*
#include "shim.h"
*/
import "C"

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"
	"unsafe"
)

// Limits of web hooks, in bytes or counts (tern.h).
const (
	MaxHookTarget = C.TERN_MAX_HOOK_TARGET // longest target
	MaxHookSecret = C.TERN_MAX_HOOK_SECRET // longest secret and verify token
	MaxHookObject = C.TERN_MAX_HOOK_OBJECT // longest object name
	MaxHookKey    = C.TERN_MAX_HOOK_KEY    // longest entry key
	MaxHookFields = C.TERN_MAX_HOOK_FIELDS // most changed fields per entry
	MaxHookField  = C.TERN_MAX_HOOK_FIELD  // longest field name
)

// HookNoAnswer is the status to report for a request that got no HTTP
// answer: a transport error or the host's timeout. It is retried.
const HookNoAnswer = C.TERN_HOOK_NO_ANSWER

// HookOptions describes a web hook for Hub.AddHook (tern_hook_opts).
// Target and Secret are required. The zero value of every other field
// takes the library's default; the fields whose zero means something in C
// (no delay, unlimited attempts or queue, never disable) are set with the
// flags.
type HookOptions struct {
	// Target is what the host's HTTP client understands, a URL say
	// (1..MaxHookTarget bytes); it is handed back in each HookRequest.
	Target string
	// Secret keys the HMAC-SHA256 signatures (1..MaxHookSecret bytes).
	Secret []byte
	// VerifyToken is sent as hub.verify_token in the challenge.
	VerifyToken string
	// Object is the body's "object" value: printable ASCII without '"'
	// or '\', at most MaxHookObject bytes; "" writes "object".
	Object string
	// Verified skips the challenge: the host vouches for the endpoint.
	// Otherwise the first request is a challenge, and only a verified
	// hook gets deliveries.
	Verified bool
	// Coalesce merges the waiting entries of one object key: the union
	// of their changed fields, the latest time and the latest data.
	Coalesce bool
	// MaxItems: a batch holds at most this many entries and is sent as
	// soon as this many wait. 0 takes 1000.
	MaxItems uint32
	// MaxBytes: a body is at most this long, and a batch is sent as soon
	// as its entries fill it (256 B to 64 MiB). 0 takes 1 MiB.
	MaxBytes uint64
	// MaxDelay: a batch is sent at the latest this long after its oldest
	// entry was queued. 0 takes 5 s; see NoDelay.
	MaxDelay time.Duration
	// NoDelay sends each entry at once (a MaxDelay of 0 in C).
	NoDelay bool
	// MaxAttempts: a batch is given up after this many attempts. 0 takes
	// 10; see UnlimitedAttempts.
	MaxAttempts uint32
	// UnlimitedAttempts never gives a batch up for its attempts.
	UnlimitedAttempts bool
	// RetryBase and RetryCap bound the backoff: attempt n waits a random
	// time in [0, min(RetryCap, RetryBase * 2^(n-1))]. 0 takes 1 s and
	// 1 h.
	RetryBase time.Duration
	RetryCap  time.Duration
	// DisableAfter: this many batches given up in a row disable the hook
	// (EventHookDisabled). 0 takes 5; see NeverDisable.
	DisableAfter uint32
	// NeverDisable keeps the hook enabled whatever fails.
	NeverDisable bool
	// MaxInflight: batches of the hook outstanding at once (1 to 1024).
	// 0 takes 1, which keeps the endpoint's order strictly.
	MaxInflight uint32
	// MaxQueued: entries waiting (not in a batch yet) at most; past it
	// Hook.Enqueue returns ErrFull. 0 takes 100000; see UnlimitedQueue.
	MaxQueued uint64
	// UnlimitedQueue lets any number of entries wait.
	UnlimitedQueue bool
}

// Hook is a web hook of a hub, named by its id (tern_hub_add_hook(3)). It
// holds no native pointer: once the hook is removed its calls return
// ErrNotFound, once the hub is closed ErrClosed. Hub.AddHook creates one;
// Hub.Hook and Hub.Hooks find them, those restored from a store among
// them.
type Hook struct {
	s  *hubState
	id uint64
}

// ID returns the hook's id, never 0.
func (k *Hook) ID() uint64 { return k.id }

// lock locks the hook's hub: ErrClosed once it is closed, ErrInvalid for
// a Hook that AddHook, Hook or Hooks did not return.
func (k *Hook) lock(op string) (*hubState, error) {
	if k == nil || k.s == nil {
		return nil, errOp(C.TERN_ERR_INVALID, op, "not a hook of a hub")
	}
	return k.s, k.s.lock(op)
}

// AddHook registers a web hook described by o and returns it. Unless
// o.Verified, the endpoint is challenged first. Requests are signed with
// a timestamp from the hub's wall clock: a hub that has none (neither
// SetWallclock nor SetStore was called) gets time.Now(). With a store,
// add hooks after SetStore. Returns ErrInvalid (a missing target or
// secret, an option out of its range, a bad object name) or ErrTooLarge.
func (h *Hub) AddHook(o HookOptions) (*Hook, error) {
	const op = "add hook"
	if len(o.Target) == 0 || len(o.Secret) == 0 {
		return nil, errOp(C.TERN_ERR_INVALID, op, "target and secret are required")
	}
	if !cstrCheck(o.Object) {
		return nil, errOp(C.TERN_ERR_INVALID, op, "object name with a NUL byte")
	}
	s := h.s
	if err := s.lock(op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var d C.tern_hook_opts
	C.tern_hook_opts_default_versioned(C.TERN_HOOK_OPTS_VERSION, &d)
	var g C.go_hook_opts
	var off uint64
	s.buf, off = putString(s.buf[:0], o.Target)
	g.target_off, g.target_len = C.uint64_t(off), C.uint64_t(len(o.Target))
	s.buf, off = putBytes(s.buf, o.Secret)
	g.secret_off, g.secret_len = C.uint64_t(off), C.uint64_t(len(o.Secret))
	s.buf, off = putString(s.buf, o.VerifyToken)
	g.token_off, g.token_len = C.uint64_t(off), C.uint64_t(len(o.VerifyToken))
	g.object_off = C.GO_NONE
	if o.Object != "" {
		s.buf, off = putString(s.buf, o.Object)
		s.buf = append(s.buf, 0)
		g.object_off = C.uint64_t(off)
	}
	if o.Verified {
		g.flags |= C.TERN_HOOK_VERIFIED
	}
	if o.Coalesce {
		g.flags |= C.TERN_HOOK_COALESCE
	}
	pick32 := func(v uint32, def C.uint32_t) C.uint32_t {
		if v == 0 {
			return def
		}
		return C.uint32_t(v)
	}
	pick64 := func(v uint64, def C.uint64_t) C.uint64_t {
		if v == 0 {
			return def
		}
		return C.uint64_t(v)
	}
	pickDur := func(v time.Duration, def C.tern_duration) C.uint64_t {
		if v <= 0 {
			return C.uint64_t(def)
		}
		return C.uint64_t(v)
	}
	g.max_items = pick32(o.MaxItems, d.max_items)
	g.max_bytes = pick64(o.MaxBytes, d.max_bytes)
	g.max_delay = pickDur(o.MaxDelay, d.max_delay)
	if o.NoDelay {
		g.max_delay = 0
	}
	g.max_attempts = pick32(o.MaxAttempts, d.max_attempts)
	if o.UnlimitedAttempts {
		g.max_attempts = 0
	}
	g.retry_base = pickDur(o.RetryBase, d.retry_base)
	g.retry_cap = pickDur(o.RetryCap, d.retry_cap)
	g.disable_after = pick32(o.DisableAfter, d.disable_after)
	if o.NeverDisable {
		g.disable_after = 0
	}
	g.max_inflight = pick32(o.MaxInflight, d.max_inflight)
	g.max_queued = pick64(o.MaxQueued, d.max_queued)
	if o.UnlimitedQueue {
		g.max_queued = 0
	}
	now := s.now()
	if !s.wallSet {
		ns := time.Now().UnixNano()
		if ns > 0 && C.tern_hub_set_wallclock(s.p, now, C.uint64_t(ns)) == 0 {
			s.wallSet = true
		}
	}
	var id C.uint64_t
	rc := C.go_add_hook(s.p, &g, bufPtr(s.buf), now, &id)
	s.after(false)
	if rc < 0 {
		return nil, newError(rc, op)
	}
	return &Hook{s: s, id: uint64(id)}, nil
}

// Hook returns the hook with this id, or ErrNotFound.
func (h *Hub) Hook(id uint64) (*Hook, error) {
	k := &Hook{s: h.s, id: id}
	if _, err := k.Info(); err != nil {
		return nil, err
	}
	return k, nil
}

// Hooks returns every hook of the hub by ascending id (nil once closed).
func (h *Hub) Hooks() []*Hook {
	s := h.s
	if s.lock("hooks") != nil {
		return nil
	}
	defer s.mu.Unlock()
	var hooks []*Hook
	for id := C.tern_hub_next_hook(s.p, 0); id != 0; id = C.tern_hub_next_hook(s.p, id) {
		hooks = append(hooks, &Hook{s: s, id: uint64(id)})
	}
	return hooks
}

// HookInfo describes a hook now (tern_hook_info).
type HookInfo struct {
	// ID is the hook's id.
	ID uint64
	// Verified says the endpoint answered its challenge (or the hook was
	// added Verified): it gets deliveries.
	Verified bool
	// Disabled says DisableAfter batches in a row were given up: the
	// hook sends nothing until Hook.Enable.
	Disabled bool
	// Failures counts the batches given up in a row.
	Failures int
	// Target is the hook's target.
	Target string
	// Queued counts the entries waiting, not in a batch yet.
	Queued uint64
	// QueuedBytes is their size in the body.
	QueuedBytes uint64
	// Outstanding counts the batches taken and not settled.
	Outstanding int
	// Delivered counts the entries delivered since the hub started.
	Delivered uint64
	// Dropped counts the entries given up since the hub started.
	Dropped uint64
	// Attempts counts the requests answered since the hub started.
	Attempts uint64
}

// Info describes the hook now, or returns ErrNotFound.
func (k *Hook) Info() (HookInfo, error) {
	s, err := k.lock("hook info")
	if err != nil {
		return HookInfo{}, err
	}
	defer s.mu.Unlock()
	var in C.tern_hook_info
	if rc := C.tern_hub_get_hook_info(s.p, C.uint64_t(k.id), &in, C.sizeof_tern_hook_info); rc < 0 {
		return HookInfo{}, newError(rc, "hook info")
	}
	return HookInfo{
		ID:          uint64(in.id),
		Verified:    in.state&C.TERN_HOOK_STATE_VERIFIED != 0,
		Disabled:    in.state&C.TERN_HOOK_STATE_DISABLED != 0,
		Failures:    int(in.failures),
		Target:      string(goBytes(in.target, in.targetlen)),
		Queued:      uint64(in.queued),
		QueuedBytes: uint64(in.queued_bytes),
		Outstanding: int(in.outstanding),
		Delivered:   uint64(in.delivered),
		Dropped:     uint64(in.dropped),
		Attempts:    uint64(in.attempts),
	}, nil
}

// Remove deletes the hook with its waiting entries and batches (no
// event). Answers to its requests already taken are then refused with
// ErrNotFound. Returns ErrNotFound when it is gone already.
func (k *Hook) Remove() error {
	s, err := k.lock("remove hook")
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	rc := C.tern_hub_remove_hook(s.p, C.uint64_t(k.id))
	s.after(false)
	return newError(rc, "remove hook")
}

// Enable enables a disabled hook again: its failures count from 0 and its
// waiting entries are due as usual from now. An enabled hook is left as
// it is. Returns ErrNotFound.
func (k *Hook) Enable() error {
	s, err := k.lock("enable hook")
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	rc := C.tern_hub_enable_hook(s.p, C.uint64_t(k.id), s.now())
	s.after(false)
	return newError(rc, "enable hook")
}

// Verify starts the hook's challenge again (after a failed one, or when
// the endpoint changed hands): the hook is unverified from now on and
// sends no delivery until the endpoint answers. Returns ErrNotFound, or
// ErrState when batches of the hook are outstanding (report their answers
// first).
func (k *Hook) Verify() error {
	s, err := k.lock("verify hook")
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	rc := C.tern_hub_verify_hook(s.p, C.uint64_t(k.id), s.now())
	s.after(false)
	return newError(rc, "verify hook")
}

// HookEntry is one change to tell a hook's endpoint (tern_hook_entry).
type HookEntry struct {
	// Key is the object's key, the body's "id" (1..MaxHookKey bytes of
	// UTF-8): what Coalesce merges by.
	Key string
	// Fields names the fields that changed (at most MaxHookFields, each
	// 1..MaxHookField bytes of UTF-8).
	Fields []string
	// Time is the body's "time", as the endpoint wants it (Unix seconds,
	// say); 0 takes time.Now().Unix().
	Time uint64
	// Data, when not empty, is the body's "data": one JSON value
	// (a json.RawMessage, say), checked by the library.
	Data []byte
}

// Enqueue queues entry e for the hook. Disabled and unverified hooks queue
// too; they send once enabled or verified. Returns ErrInvalid (an empty or
// non-UTF-8 key or field name, Data that is not one JSON value),
// ErrTooLarge (a key, field or count over its limit, or an entry whose
// batch alone would pass MaxBytes), ErrNotFound or ErrFull (MaxQueued
// entries wait).
func (k *Hook) Enqueue(e HookEntry) error {
	const op = "hook enqueue"
	if len(e.Fields) > MaxHookFields {
		return errOp(C.TERN_ERR_TOO_LARGE, op, "too many fields")
	}
	for _, f := range e.Fields {
		if !cstrCheck(f) {
			return errOp(C.TERN_ERR_INVALID, op, "field name with a NUL byte")
		}
	}
	t := e.Time
	if t == 0 {
		if now := time.Now().Unix(); now > 0 {
			t = uint64(now)
		}
	}
	s, err := k.lock(op)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.buf = append(s.buf[:0], e.Key...)
	for _, f := range e.Fields {
		s.buf = append(append(s.buf, f...), 0)
	}
	s.buf = append(s.buf, e.Data...)
	s.buf = append(s.buf, 0) // never empty, and room past the data
	rc := C.go_hook_enqueue(s.p, C.uint64_t(k.id), bufPtr(s.buf), C.uint64_t(len(e.Key)),
		C.uint32_t(len(e.Fields)), C.uint64_t(len(e.Data)), C.uint64_t(t), s.now())
	s.after(false)
	return newError(rc, op)
}

// HookKind says what a HookRequest asks for (tern_hook_kind).
type HookKind int

// The hook request kinds.
const (
	// HookDelivery: POST Body to Target with Header.
	HookDelivery HookKind = C.TERN_HOOK_DELIVERY
	// HookChallenge: GET Target with "?" and Query appended; the
	// endpoint answers 200 with the challenge as its body.
	HookChallenge HookKind = C.TERN_HOOK_CHALLENGE
)

// String returns "delivery" or "challenge".
func (k HookKind) String() string {
	switch k {
	case HookDelivery:
		return "delivery"
	case HookChallenge:
		return "challenge"
	}
	return "HookKind(" + itoa(int64(k)) + ")"
}

// HookRequest is a request for the host to make for a web hook, copied
// out of the library: it stays valid after the hook is removed. Answer it
// with Hub.HookDone.
type HookRequest struct {
	// Kind is HookDelivery or HookChallenge.
	Kind HookKind
	// Hook is the hook's id.
	Hook uint64
	// Delivery names the request's batch (or challenge) in HookDone;
	// the same for every attempt of a batch.
	Delivery uint64
	// Attempt is 1 for the first try.
	Attempt int
	// Entries counts the entries in Body (HookDelivery).
	Entries int
	// Method is "POST" or "GET".
	Method string
	// Target is the hook's target.
	Target string
	// Query is the challenge's query, percent-encoded, to append after
	// "?" (HookChallenge); "" for a delivery.
	Query string
	// Body is the JSON batch (HookDelivery); nil for a challenge.
	Body []byte
	// Header holds the headers to set: Content-Type, X-Tern-Timestamp,
	// X-Tern-Signature, X-Tern-Delivery and X-Tern-Attempt.
	Header http.Header
	// Timestamp is the Unix time of X-Tern-Timestamp, in seconds.
	Timestamp int64
}

// URL returns the target, with "?" and the query appended for a
// challenge.
func (r *HookRequest) URL() string {
	if r.Query == "" {
		return r.Target
	}
	return r.Target + "?" + r.Query
}

// NewHTTPRequest builds the net/http request to make: Method, URL(),
// Header and Body. The host sets its own timeout (ctx, or the client's).
func (r *HookRequest) NewHTTPRequest(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	return req, nil
}

// NextHookRequest takes the next hook request due now: a challenge, a
// batch due again after its backoff, or a new batch (MaxItems or MaxBytes
// worth of entries wait, or the oldest waited MaxDelay). It returns false
// when nothing is due (Expiry says when something will be; Run does not
// make requests), the hub is closed, or memory ran out. The request is
// outstanding until HookDone; the host may make several at once.
func (h *Hub) NextHookRequest() (*HookRequest, bool) {
	s := h.s
	if s.lock("next hook request") != nil {
		return nil, false
	}
	defer s.mu.Unlock()
	return s.nextHookRequest()
}

// WaitHookRequest returns the next hook request, waiting until one is due
// (a batch fills or its MaxDelay passes, a backoff ends, a challenge is
// due), ctx is done (ctx.Err()) or the hub is closed (ErrClosed). Several
// goroutines may wait at once, each making the requests it gets.
func (h *Hub) WaitHookRequest(ctx context.Context) (*HookRequest, error) {
	const op = "wait hook request"
	s := h.s
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := s.lock(op); err != nil {
			return nil, err
		}
		if r, ok := s.nextHookRequest(); ok {
			s.mu.Unlock()
			return r, nil
		}
		wait := time.Hour
		if exp := uint64(C.tern_hub_get_expiry(s.p)); exp != tstampNone {
			now := uint64(s.now())
			switch {
			case exp <= now:
				// A deadline that is not a hook request's (Run's), or a
				// hook with MaxInflight batches out: look again soon.
				wait = time.Millisecond
			case time.Duration(exp-now) < wait:
				wait = time.Duration(exp - now)
			}
		}
		ch := s.waitChan()
		s.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-timer.C:
		}
	}
}

func (s *hubState) nextHookRequest() (*HookRequest, bool) {
	var r C.tern_hook_request
	rc := C.tern_hub_next_hook_request_versioned(s.p, C.TERN_HOOK_REQUEST_VERSION, s.now(), &r)
	s.after(false)
	if rc != 1 {
		return nil, false
	}
	req := &HookRequest{
		Kind:      HookKind(r.kind),
		Hook:      uint64(r.hook),
		Delivery:  uint64(r.delivery),
		Attempt:   int(r.attempt),
		Entries:   int(r.entries),
		Method:    C.GoString(r.method),
		Target:    string(goBytes(r.target, r.targetlen)),
		Body:      goBytes(r.body, r.bodylen),
		Header:    make(http.Header, int(r.nheaders)),
		Timestamp: int64(r.timestamp),
	}
	if r.query != nil && r.querylen > 0 {
		req.Query = C.GoStringN(r.query, C.int(r.querylen))
	}
	if r.kind == C.TERN_HOOK_DELIVERY && req.Body == nil {
		req.Body = []byte{}
	}
	if r.nheaders > 0 {
		hs := unsafe.Slice(r.headers, int(r.nheaders))
		for _, hd := range hs {
			req.Header.Set(C.GoString(hd.name), C.GoString(hd.value))
		}
	}
	return req, true
}

// HookAnswer is what came back for a HookRequest.
type HookAnswer struct {
	// Status is the HTTP status (100..599), or HookNoAnswer for a
	// transport error or the host's timeout.
	Status int
	// RetryAfter is the Retry-After header's value, if any
	// (delay-seconds or an HTTP date; read with 429).
	RetryAfter string
	// Body is the answer's body; read only for a challenge (its echo), so
	// a few hundred bytes are enough.
	Body []byte
}

// HookAnswerFrom makes the HookAnswer of a net/http round trip: err not
// nil (or resp nil) is HookNoAnswer; otherwise the status, the Retry-After
// header and the first 4 KiB of the body, which it reads and closes.
func HookAnswerFrom(resp *http.Response, err error) HookAnswer {
	if err != nil || resp == nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return HookAnswer{Status: HookNoAnswer}
	}
	a := HookAnswer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.Body != nil {
		a.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	return a
}

// HookDone reports the answer to the outstanding request r (only its Hook
// and Delivery are read). 200, 201, 202, 204 and 102 deliver the batch;
// 500, 502, 503, 504, 429 (after its Retry-After) and HookNoAnswer try it
// again after a backoff; any other status gives it up (EventHookDropped,
// and EventHookDisabled after DisableAfter in a row). Returns ErrInvalid
// (a status out of range), ErrNotFound (not outstanding: answered already,
// or its hook was removed or verified again) or ErrNoMem (nothing changed:
// report it again).
func (h *Hub) HookDone(r *HookRequest, a HookAnswer) error {
	const op = "hook done"
	if r == nil {
		return errOp(C.TERN_ERR_INVALID, op, "nil request")
	}
	status := a.Status
	if status < 0 || status > 999 {
		status = -1 // out of range: the library refuses it
	}
	s := h.s
	if err := s.lock(op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.buf = append(append(s.buf[:0], a.RetryAfter...), a.Body...)
	p := bufPtr(s.buf)
	var ra *C.char
	var body *C.uint8_t
	if len(a.RetryAfter) > 0 {
		ra = (*C.char)(unsafe.Pointer(p))
	}
	if len(a.Body) > 0 {
		body = (*C.uint8_t)(unsafe.Pointer(&s.buf[len(a.RetryAfter)]))
	}
	rc := C.tern_hub_hook_done(s.p, C.uint64_t(r.Hook), C.uint64_t(r.Delivery), C.int(status),
		ra, C.size_t(len(a.RetryAfter)), body, C.size_t(len(a.Body)), s.now())
	s.after(false)
	return newError(rc, op)
}

// CheckHookSignature checks a request a hook sent, on the receiving side:
// timestamp and signature are its X-Tern-Timestamp and X-Tern-Signature
// values, body its body, secret the hook's secret. A timestamp further
// than tolerance from now (either way) is refused, so that a recorded
// request cannot be replayed. Returns nil (authentic), an error matching
// ErrProto (the signature does not match; compared in constant time),
// ErrState (outside the tolerance) or ErrInvalid (malformed values).
func CheckHookSignature(secret []byte, timestamp, signature string, body []byte,
	now time.Time, tolerance time.Duration) error {
	const op = "check hook signature"
	nowS := now.Unix()
	if nowS < 0 {
		nowS = 0
	}
	tol := tolerance / time.Second
	if tol < 0 {
		tol = 0
	}
	// One Go buffer, no Go pointers in it, for the four byte strings.
	buf := make([]byte, 0, len(secret)+len(timestamp)+len(signature)+len(body)+1)
	buf = append(buf, secret...)
	buf = append(buf, timestamp...)
	buf = append(buf, signature...)
	buf = append(buf, body...)
	buf = append(buf, 0)
	at := func(off int) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(&buf[off])) }
	o1 := len(secret)
	o2 := o1 + len(timestamp)
	o3 := o2 + len(signature)
	rc := C.tern_hook_check_signature(at(0), C.size_t(len(secret)),
		(*C.char)(unsafe.Pointer(at(o1))), C.size_t(len(timestamp)),
		(*C.char)(unsafe.Pointer(at(o2))), C.size_t(len(signature)),
		at(o3), C.size_t(len(body)), C.uint64_t(nowS), C.uint64_t(tol))
	return newError(rc, op)
}

// CheckHookChallenge does the endpoint's side of a hook's challenge: it
// reads query (the raw query after "?", r.URL.RawQuery say), checks that
// hub.mode is subscribe and hub.verify_token is token (in constant time),
// and returns the challenge to answer with: status 200, the challenge as
// the body. Returns an error matching ErrProto (wrong mode or token) or
// ErrInvalid (a parameter missing or malformed).
func CheckHookChallenge(query, token string) (string, error) {
	const op = "check hook challenge"
	buf := make([]byte, 0, len(query)+len(token)+1)
	buf = append(append(append(buf, query...), token...), 0)
	var off, n C.size_t
	q := (*C.uint8_t)(unsafe.Pointer(&buf[0]))
	tok := (*C.uint8_t)(unsafe.Pointer(&buf[len(query)]))
	rc := C.go_hook_check_challenge(q, C.size_t(len(query)), tok, C.size_t(len(token)), &off, &n)
	if rc < 0 {
		return "", newError(rc, op)
	}
	return string(buf[int(off) : int(off)+int(n)]), nil
}
