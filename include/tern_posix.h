/*
 * libtern-posix — the optional I/O backend of libtern.
 *
 * libtern itself never opens a socket, starts a thread or reads a clock.
 * This library does, on top of tern.h's public API alone:
 *
 *   tern_loop_methods  the backend interface: a loop with readiness,
 *                      timers, a wake-up from other threads and a clock,
 *                      as a table of methods.  A host with its own loop
 *                      (libuv, libevent, its own epoll) fills the table.
 *   tern_epoll         the shipped implementation (epoll, eventfd).
 *   tern_driver        runs one hub on any loop through that interface:
 *                      TCP listeners, non-blocking sockets, the binary
 *                      framing of tern-protocol(7), output batched into one
 *                      writev per wake-up per connection, backpressure,
 *                      the hub's timers, its events, the file store's
 *                      sync thread; and sockets of the host's own
 *                      protocols (HTTP, say) on the same loop.
 *   tern_inbox         publishing into a driver's hub from any thread.
 *   tern_workers       N threads, one hub each, sessions sharded by
 *                      tern_shard_of.
 *   tern_http          HTTP/1.1 on a driver's loop: a strict bounded
 *                      parser, requests handed to the host, answers,
 *                      and connections turned into the web framings'
 *                      streams (tern_conn_new_stream); requests forwarded
 *                      between the workers' loops.
 *   tern_token         signed, expiring subscriber tokens (HMAC-SHA256).
 *
 * The overview is tern_posix(3).  Link with pkg-config libtern-posix.
 *
 * Thread rule: a tern_epoll, a tern_driver and its sockets belong to the
 * thread that runs the loop, except where a function says "any thread"
 * (tern_epoll_stop, the loop's wake method, tern_inbox_publish,
 * tern_workers_publish).
 */
#ifndef TERN_POSIX_H
#define TERN_POSIX_H

#include <tern.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the backend interface ---------------------------------------------- */

/* TERN_IO_READ and TERN_IO_WRITE are readiness bits: what to watch a
   descriptor for, and what it is ready for.  TERN_IO_ERROR comes with
   either when the descriptor failed or hung up (read it to find out). */
#define TERN_IO_READ 0x1u
#define TERN_IO_WRITE 0x2u
#define TERN_IO_ERROR 0x4u

/* tern_loop_io_cb is called on the loop's thread when the descriptor is
   ready; |events| is a set of TERN_IO_* bits.  Readiness is level
   triggered: a descriptor that stays ready is reported again. */
typedef void (*tern_loop_io_cb)(void *arg, unsigned events);
/* tern_loop_cb is called on the loop's thread: a timer is due, or a waker
   was woken. */
typedef void (*tern_loop_cb)(void *arg);

/* TERN_LOOP_METHODS_V1 is the first layout of tern_loop_methods. */
#define TERN_LOOP_METHODS_V1 1
/* TERN_LOOP_METHODS_VERSION is the layout of tern_loop_methods here. */
#define TERN_LOOP_METHODS_VERSION TERN_LOOP_METHODS_V1

/*
 * tern_loop_methods is the backend interface, the model of tern_store_methods:
 * a host that has a loop fills a table (static, for the life of every user)
 * and passes it with its loop pointer |loop| to tern_driver_new.  The driver
 * calls nothing else.  Methods are only ever appended; |version| says which
 * the table has.  Every method gets |loop| first and is called on the loop's
 * thread, except wake.  Handles (|*pio|, |*ptimer|, |*pwaker|) are opaque
 * to the caller; a callback may delete any handle, its own included, and
 * the loop must then not call that handle's callback again.
 */
typedef struct tern_loop_methods {
  uint32_t version; /* TERN_LOOP_METHODS_VERSION */
  /* now returns the loop's monotonic clock in tern_tstamp units
     (nanoseconds, any origin, never going backwards): the |now| of every
     tern.h call the driver makes. */
  tern_tstamp (*now)(void *loop);
  /* io_add watches |fd| for |events| (TERN_IO_READ, TERN_IO_WRITE, both,
     or 0 for nothing yet) and calls |cb| with |arg| when it is ready.
     Returns 0 and the handle in |*pio|, or a negative tern_error. */
  int (*io_add)(void *loop, void **pio, int fd, unsigned events,
                tern_loop_io_cb cb, void *arg);
  /* io_set changes what the handle watches for.  0 or a tern_error. */
  int (*io_set)(void *loop, void *io, unsigned events);
  /* io_del stops watching and frees the handle (the fd stays open). */
  void (*io_del)(void *loop, void *io);
  /* timer_add makes a stopped one-shot timer that calls |cb| with |arg|.
     0 and |*ptimer|, or a tern_error. */
  int (*timer_add)(void *loop, void **ptimer, tern_loop_cb cb, void *arg);
  /* timer_set arms the timer for |deadline| on the now clock (a deadline
     already past fires on the next turn of the loop), replacing what it
     was armed for; TERN_TSTAMP_NONE stops it. */
  void (*timer_set)(void *loop, void *timer, tern_tstamp deadline);
  /* timer_del stops and frees the timer. */
  void (*timer_del)(void *loop, void *timer);
  /* waker_add makes a waker: wake, from any thread, makes the loop call
     |cb| with |arg| on its own thread soon after (several wakes before
     that call may make one call).  0 and |*pwaker|, or a tern_error. */
  int (*waker_add)(void *loop, void **pwaker, tern_loop_cb cb, void *arg);
  /* wake may be called from any thread, also from signal-free contexts
     that hold locks; it never blocks. */
  void (*wake)(void *loop, void *waker);
  /* waker_del frees the waker; no thread may wake it any more. */
  void (*waker_del)(void *loop, void *waker);
} tern_loop_methods;

/* ---- the epoll loop ------------------------------------------------------ */

/* tern_epoll is the shipped loop: epoll(7), an eventfd for wakers, timers
   kept in a list (made for a few per loop: the driver uses one). */
typedef struct tern_epoll tern_epoll;

/*
 * tern_posix_now returns CLOCK_MONOTONIC in tern_tstamp units; the epoll
 * loop's now method.  Any thread.
 */
TERN_EXTERN tern_tstamp tern_posix_now(void);

/*
 * tern_epoll_new creates a loop and stores it in |*pep|.  Returns 0,
 * TERN_ERR_INVALID (pep NULL), TERN_ERR_NOMEM or TERN_ERR_STORE (a system
 * call failed: epoll_create1 or eventfd; errno says which).
 */
TERN_EXTERN int tern_epoll_new(tern_epoll **pep);

/* tern_epoll_del frees the loop.  Every handle made on it must have been
   deleted first.  NULL does nothing. */
TERN_EXTERN void tern_epoll_del(tern_epoll *ep);

/*
 * tern_epoll_methods returns the epoll loop's methods table (static, layout
 * TERN_LOOP_METHODS_VERSION); the loop pointer to pass with it is the
 * tern_epoll.
 */
TERN_EXTERN const tern_loop_methods *tern_epoll_methods(void);

/*
 * tern_epoll_run_once waits at most |max_wait| (0: does not wait;
 * TERN_TSTAMP_NONE: until something happens) for readiness, a due timer or
 * a wake, and calls the callbacks of what happened.  Returns the number of
 * callbacks called, TERN_ERR_INVALID or TERN_ERR_STORE (epoll_wait
 * failed other than with EINTR).
 */
TERN_EXTERN int tern_epoll_run_once(tern_epoll *ep, tern_duration max_wait);

/*
 * tern_epoll_run turns the loop until tern_epoll_stop.  Returns 0 after a
 * stop, or the error of tern_epoll_run_once.  A stop asked before run
 * started makes it return at once (and is then used up).
 */
TERN_EXTERN int tern_epoll_run(tern_epoll *ep);

/* tern_epoll_stop makes tern_epoll_run return after the callbacks of its
   current turn.  Any thread. */
TERN_EXTERN void tern_epoll_stop(tern_epoll *ep);

/* ---- the driver: one hub on a loop --------------------------------------- */

/* tern_driver runs one hub on one loop. */
typedef struct tern_driver tern_driver;
/* tern_socket is one connected socket the driver serves: a binary tern_conn or a
   socket of a host protocol. */
typedef struct tern_socket tern_socket;

/*
 * tern_socket_handler is a protocol on a socket: the table a host fills to
 * serve its own protocol (HTTP, say) on the driver's loop.  A NULL handler
 * means the binary framing of tern-protocol(7) on the driver's hub.
 * Every method gets the handler's |user| pointer first (given with the
 * handler to tern_driver_listen or tern_driver_adopt) and runs on the
 * loop's thread.  Methods may call every tern_socket_* function and the
 * driver's hub; none may call tern_driver_del.
 *
 * Output is pulled, like tern_conn_write: when the socket may send, the
 * driver calls pull with room for |cap| bytes; bytes the socket does not
 * take at once stay in the socket's one buffer (at most the driver's
 * out_cap) and pull is not called again until they are sent, so a slow
 * peer costs a bounded amount of memory and leaves the rest with the
 * protocol (in the hub, for the binary framing).  pull is called when the
 * socket opens, after every read, and after tern_socket_want_write.
 */
/* TERN_SOCKET_HANDLER_V1 is the first layout of tern_socket_handler. */
#define TERN_SOCKET_HANDLER_V1 1
/* TERN_SOCKET_HANDLER_VERSION is its layout in this header. */
#define TERN_SOCKET_HANDLER_VERSION TERN_SOCKET_HANDLER_V1
typedef struct tern_socket_handler {
  uint32_t version; /* TERN_SOCKET_HANDLER_VERSION */
  /* open: a socket was accepted or adopted.  0 keeps it, a negative
     tern_error closes it at once (close is not called).  Optional. */
  int (*open)(void *user, tern_socket *s, tern_tstamp now);
  /* read: |len| bytes came from the peer, valid during the call.  0, or a
     negative tern_error to end the socket (what pull still gives is sent
     first).  Required. */
  int (*read)(void *user, tern_socket *s, const uint8_t *in, size_t len,
              tern_tstamp now);
  /* pull: fill |out| with up to |cap| bytes.  Returns the count, 0 for
     nothing now, or a negative tern_error once everything was given: the
     socket closes when the buffered bytes are sent.  Required. */
  tern_ssize (*pull)(void *user, tern_socket *s, uint8_t *out, size_t cap,
                     tern_tstamp now);
  /* close: the socket is closing (the peer left, a socket error, an end
     asked for); the socket is closed after it returns.  The socket is
     freed then: forget it.  Optional. */
  void (*close)(void *user, tern_socket *s);
} tern_socket_handler;

/* TERN_DRIVER_OPTIONS_V1 is the first layout of tern_driver_options. */
#define TERN_DRIVER_OPTIONS_V1 1
/* TERN_DRIVER_OPTIONS_V2 adds |mem|. */
#define TERN_DRIVER_OPTIONS_V2 2
/* TERN_DRIVER_OPTIONS_VERSION is its layout in this header. */
#define TERN_DRIVER_OPTIONS_VERSION TERN_DRIVER_OPTIONS_V2

/*
 * tern_driver_options configures a driver.  Fill it with
 * tern_driver_options_default; fields are only ever appended.
 */
typedef struct tern_driver_options {
  uint32_t version;
  /* out_cap is the most bytes a socket holds that the kernel has not
     taken, and the most one pull is asked for.  64 KiB; 1 KiB..64 MiB. */
  size_t out_cap;
  /* on_event, when set, is called for each event of the hub
     (tern_hub_next_event), on the loop's thread, before the driver acts
     on it.  The driver pulls every event: a host that wants them sets
     this.  The driver itself acts on the end events (CONN_DEAD,
     CONN_CLOSED: the connection's last bytes are sent, its socket closed,
     the tern_conn deleted, after the callback) and, with
     settings.hello_accept 0, on nothing else.  With hello_accept, the
     callback must answer CONN_HELLO with tern_conn_accept or
     tern_conn_goaway (now or later).  It may publish and call every
     function of the hub and the tern_socket_* functions; not
     tern_driver_del.  NULL: events are dropped after the driver's part. */
  void (*on_event)(void *user_data, tern_driver *d, const tern_event *ev);
  /* user_data is passed to on_event. */
  void *user_data;
  /* (layout V2) mem, when not NULL, allocates everything the driver and
     its inboxes allocate: the driver, listeners, sockets and their
     buffers, and the inbox copies of messages (copied; all four functions
     set).  Inbox copies are allocated on the publishing threads: with an
     inbox the functions must be thread-safe.  The hub has its own
     (tern_hub_new); tern_workers gives this one to its hubs too.  NULL:
     libc.  A tern_epoll allocates with libc: a host that routes every
     allocation brings its own loop. */
  const tern_mem *mem;
} tern_driver_options;

/* tern_driver_options_default_versioned fills the fields of layout
   |version| of |o| with the defaults and sets o->version (an unknown
   |version| sets it to 0, which tern_driver_new refuses).  NULL does
   nothing.  Call it through the macro. */
TERN_EXTERN void tern_driver_options_default_versioned(uint32_t version,
                                                       tern_driver_options *o);
#define tern_driver_options_default(o) \
  tern_driver_options_default_versioned(TERN_DRIVER_OPTIONS_VERSION, (o))

/*
 * tern_driver_new makes a driver for |hub| on the loop |loop| with methods
 * |m| (the table is not copied: it must outlive the driver) and options
 * |o| (NULL: defaults; copied).  The hub stays the host's: it is used on
 * the loop's thread only from now on, and deleted by the host after
 * tern_driver_del.  Returns 0, TERN_ERR_INVALID (NULL arguments, an
 * unknown version, out_cap out of range, a method missing, a mem with a
 * function missing) or TERN_ERR_NOMEM, or what the loop's timer_add
 * returned.
 */
TERN_EXTERN int tern_driver_new(tern_driver **pd, tern_hub *hub,
                                const tern_loop_methods *m, void *loop,
                                const tern_driver_options *o);

/*
 * tern_driver_del closes every listener and socket (binary connections
 * are deleted with tern_conn_del, without end events; host sockets get
 * their close call) and frees the driver.  Bytes not yet sent are
 * dropped: to say goodbye first, call tern_hub_goaway_all and
 * tern_driver_process and turn the loop until tern_driver_get_stats
 * reports no sockets.  NULL does nothing.
 */
TERN_EXTERN void tern_driver_del(tern_driver *d);

/*
 * tern_driver_listen listens on TCP |host| (a numeric IPv4 or IPv6
 * address; NULL or "" is 127.0.0.1) port |port| (0: a free one, stored in
 * |*pport| when |pport| is not NULL) and serves every connection accepted
 * there with |h| and |user| (|h| NULL: the binary framing on the hub).
 * Sockets are non-blocking and close-on-exec, with TCP_NODELAY.  |h| is
 * not copied: it must outlive the driver.  Returns 0, TERN_ERR_INVALID (a
 * bad address, an unknown handler version, read or pull missing),
 * TERN_ERR_NOMEM or TERN_ERR_STORE (socket, bind or listen failed; errno
 * says why).
 */
TERN_EXTERN int tern_driver_listen(tern_driver *d, const char *host,
                                   uint16_t port, const tern_socket_handler *h,
                                   void *user, uint16_t *pport);

/*
 * tern_driver_adopt serves the connected socket |fd| (made non-blocking
 * here) with |h| and |user| as if it had been accepted; the driver owns
 * the fd from then on, also on failure (it is closed).  The new socket is
 * stored in |*ps| when |ps| is not NULL; it is valid until its close.
 * Returns 0, TERN_ERR_INVALID, TERN_ERR_NOMEM, or the error of the
 * handler's open or of tern_conn_new.
 */
TERN_EXTERN int tern_driver_adopt(tern_driver *d, int fd,
                                  const tern_socket_handler *h, void *user,
                                  tern_socket **ps);

/*
 * tern_driver_watch_store watches |store|'s completion descriptor
 * (tern_store_file_fd) on the loop and calls tern_store_file_complete on
 * the driver's hub when it is readable, so that PERSISTED events come out
 * of the loop.  Attach the store to the hub first.  A store without a
 * sync thread has no descriptor: nothing is watched.  The store must stay
 * open until tern_driver_del.  Returns 0, TERN_ERR_INVALID, TERN_ERR_STATE
 * (a store is watched already) or the loop's io_add error.
 */
TERN_EXTERN int tern_driver_watch_store(tern_driver *d,
                                        tern_store_file *store);

/*
 * tern_driver_process does the driver's work after the host changed the
 * hub outside a driver callback (published, accepted, closed, from a
 * callback of its own on the loop): it takes the hub's events, handles the
 * deadlines that are due, writes to the connections that became ready and
 * re-arms the loop's timer.  Calls made from inside driver callbacks and
 * tern_inbox publishes need no such call.  NULL does nothing.
 */
TERN_EXTERN void tern_driver_process(tern_driver *d);

/* tern_driver_get_hub returns the driver's hub. */
TERN_EXTERN tern_hub *tern_driver_get_hub(const tern_driver *d);

/* tern_driver_stats holds counters since tern_driver_new, and gauges of
   now.  Fields are only ever appended. */
typedef struct tern_driver_stats {
  uint64_t sockets;        /* open sockets now (binary and host)          */
  uint64_t accepted;       /* sockets accepted or adopted                  */
  uint64_t closed;         /* sockets closed                               */
  uint64_t bytes_in;       /* bytes read from sockets                      */
  uint64_t bytes_out;      /* bytes sockets took                           */
  uint64_t writes;         /* write and writev calls                       */
  uint64_t pulled;         /* bytes taken by pull (tern_conn_write...)    */
  uint64_t blocked;        /* times a socket was full with bytes left      */
  uint64_t buffered;       /* bytes held for full sockets now, all sockets */
  uint64_t buffered_max;   /* most bytes one socket has held               */
  uint64_t events;         /* hub events taken                             */
} tern_driver_stats;

/* tern_driver_get_stats copies the first |size| bytes of the driver's
   statistics into |st|, zero past the fields this library knows. */
TERN_EXTERN void tern_driver_get_stats(const tern_driver *d,
                                       tern_driver_stats *st, size_t size);

/* ---- sockets -------------------------------------------------------------- */

/* tern_socket_want_write asks for a pull soon (on this turn of the loop,
   after the current callback): the protocol has bytes to send. */
TERN_EXTERN void tern_socket_want_write(tern_socket *s);

/* tern_socket_end ends the socket: what pull still gives and what is
   buffered is sent (while the kernel takes it: an ending socket whose
   socket is full is closed at once, its last bytes dropped), then the
   handler's close is called and the socket closed.  A binary socket gets a GOAWAY with
   TERN_GOAWAY_REPLACED through tern_conn_goaway. */
TERN_EXTERN void tern_socket_end(tern_socket *s);

/* tern_socket_fd returns the socket's file descriptor (for getpeername, say; do not
   read, write or close it). */
TERN_EXTERN int tern_socket_fd(const tern_socket *s);

/* tern_socket_get_conn returns the tern_conn of a binary socket, and of a
   tern_http stream or WebSocket once its head is written; NULL for
   another host socket. */
TERN_EXTERN tern_conn *tern_socket_get_conn(const tern_socket *s);

/* tern_socket_get_driver returns the socket's driver. */
TERN_EXTERN tern_driver *tern_socket_get_driver(const tern_socket *s);

/* tern_socket_set_user_data attaches the protocol's own pointer to the
   socket; tern_socket_get_user_data returns it (NULL at first).  For
   binary sockets the tern_conn's user data is the driver's (it is the
   tern_socket: tern_conn_get_user_data(ev->conn) in on_event), so a host
   keeps its own per-connection data here. */
TERN_EXTERN void tern_socket_set_user_data(tern_socket *s, void *user_data);
TERN_EXTERN void *tern_socket_get_user_data(const tern_socket *s);

/* ---- the inbox: publishing from any thread -------------------------------- */

/* tern_inbox queues publishes for a driver's hub from any thread. */
typedef struct tern_inbox tern_inbox;

/* tern_inbox_done is called on the loop's thread with the publish call's
   result for each message taken from the inbox: |rc| 0 or the error of
   tern_hub_publish, |cookie| the desc's cookie. */
typedef void (*tern_inbox_done)(void *user_data, uint64_t cookie, int rc);

/*
 * tern_inbox_new makes an inbox for the hub of |d| (call it on the loop's
 * thread).  |done| (optional) gets each result, with |user_data|.  The
 * lock it takes is held only to link or unlink a queue; publishing into
 * the hub happens on the loop's thread, woken through the loop's waker.
 * Returns 0, TERN_ERR_INVALID, TERN_ERR_NOMEM or the loop's waker_add
 * error.
 */
TERN_EXTERN int tern_inbox_new(tern_inbox **pin, tern_driver *d,
                               tern_inbox_done done, void *user_data);

/*
 * tern_inbox_publish queues a copy of the message |desc| for session |key|
 * and wakes the loop, which publishes it with tern_hub_publish at its
 * |now|.  Everything |desc| points to and |key| are copied before it
 * returns (one allocation per message): the caller keeps its buffers.
 * Any thread.  Returns 0 (queued; the publish's own result goes to the
 * done callback), TERN_ERR_INVALID (NULL arguments, empty key, attrs with
 * NULL strings), TERN_ERR_TOO_LARGE (key, id, collapse key, content type
 * or attribute count over their limits) or TERN_ERR_NOMEM.
 *
 * |desc_version| is the layout of |desc| (TERN_MSG_DESC_V1 and later; an
 * unknown one gives TERN_ERR_INVALID), so that a program built against
 * this header keeps working when tern_msg_desc grows.  Call it through the
 * tern_inbox_publish macro, which passes this header's layout.
 */
TERN_EXTERN int tern_inbox_publish_versioned(tern_inbox *in,
                                             const uint8_t *key, size_t keylen,
                                             uint32_t desc_version,
                                             const tern_msg_desc *desc);
/* tern_inbox_publish(in, key, keylen, desc) publishes |desc| in this
   header's layout. */
#define tern_inbox_publish(in, key, keylen, desc)                   \
  tern_inbox_publish_versioned((in), (key), (keylen), TERN_MSG_DESC_VERSION, \
                               (desc))

/* tern_inbox_del frees the inbox and drops what it still holds (no done
   calls).  No thread may publish into it any more.  Call it on the loop's
   thread before tern_driver_del.  NULL does nothing. */
TERN_EXTERN void tern_inbox_del(tern_inbox *in);

/* ---- workers: N hubs on N threads ------------------------------------------ */

/* tern_workers runs N threads, each an epoll loop with its own hub,
   driver and inbox. */
typedef struct tern_workers tern_workers;

/* TERN_WORKERS_OPTIONS_V1 is the first layout of tern_workers_options. */
#define TERN_WORKERS_OPTIONS_V1 1
/* TERN_WORKERS_OPTIONS_VERSION is its layout in this header. */
#define TERN_WORKERS_OPTIONS_VERSION TERN_WORKERS_OPTIONS_V1

/* tern_workers_options configures the workers.  Fill it with
   tern_workers_options_default; fields are only ever appended. */
typedef struct tern_workers_options {
  uint32_t version;
  /* nthreads is the number of workers (and hubs).  1; at most 1024. */
  uint32_t nthreads;
  /* settings for every hub (copied); NULL: tern_settings_default.  Each
     hub's seed is settings->seed plus its worker number. */
  const tern_settings *settings;
  /* driver options for every worker (copied; on_event is replaced by
     the workers' own, which calls on_event below). */
  const tern_driver_options *driver;
  /* on_event, when set, gets each hub event on its worker's thread, as
     tern_driver_options.on_event; |worker| is the worker number.  With
     settings->hello_accept, CONN_HELLO reaches it only on the worker that
     owns the session, and it must answer it as there. */
  void (*on_event)(void *user_data, uint32_t worker, tern_driver *d,
                   const tern_event *ev);
  /* on_done, when set, gets each inbox publish result on the worker's
     thread (see tern_inbox_done). */
  void (*on_done)(void *user_data, uint32_t worker, uint64_t cookie, int rc);
  void *user_data;
} tern_workers_options;

/* tern_workers_options_default_versioned fills the fields of layout
   |version| of |o| with the defaults and sets o->version (an unknown
   |version| sets it to 0).  NULL does nothing.  Call it through the
   macro. */
TERN_EXTERN void
tern_workers_options_default_versioned(uint32_t version,
                                       tern_workers_options *o);
#define tern_workers_options_default(o) \
  tern_workers_options_default_versioned(TERN_WORKERS_OPTIONS_VERSION, (o))

/*
 * tern_workers_new makes |o|->nthreads workers, not yet running.  Returns
 * 0, TERN_ERR_INVALID, TERN_ERR_NOMEM, TERN_ERR_STORE (a loop could not be
 * made) or the error of tern_hub_new.
 */
TERN_EXTERN int tern_workers_new(tern_workers **pw,
                                 const tern_workers_options *o);

/*
 * tern_workers_listen listens for binary connections on |host| |port| on
 * every worker (SO_REUSEPORT: the kernel spreads connections over them).
 * A connection accepted by one worker is handed, once its HELLO names the
 * session, to the worker tern_shard_of gives for the session key, which
 * serves it from then on; so a session's messages and its receivers meet
 * on one hub.  Port 0 picks a free port, stored in |*pport|.  Call it
 * before tern_workers_start.  Returns 0, TERN_ERR_INVALID, TERN_ERR_STATE
 * (running) or the error of tern_driver_listen.
 */
TERN_EXTERN int tern_workers_listen(tern_workers *w, const char *host,
                                    uint16_t port, uint16_t *pport);

/* tern_workers_start starts the threads.  Returns 0, TERN_ERR_STATE
   (started already), TERN_ERR_INVALID or TERN_ERR_NOMEM (a thread could
   not start; those started were stopped). */
TERN_EXTERN int tern_workers_start(tern_workers *w);

/*
 * tern_workers_publish publishes a copy of |desc| to session |key| on the
 * worker tern_shard_of names, through its inbox.  Any thread, once the
 * workers exist (before start, messages wait for it).  Returns what
 * tern_inbox_publish returns.  |desc_version| is the layout of |desc|, as
 * for tern_inbox_publish_versioned; call it through the
 * tern_workers_publish macro.
 */
TERN_EXTERN int tern_workers_publish_versioned(tern_workers *w,
                                               const uint8_t *key,
                                               size_t keylen,
                                               uint32_t desc_version,
                                               const tern_msg_desc *desc);
/* tern_workers_publish(w, key, keylen, desc) publishes |desc| in this
   header's layout. */
#define tern_workers_publish(w, key, keylen, desc)                      \
  tern_workers_publish_versioned((w), (key), (keylen),                  \
                                 TERN_MSG_DESC_VERSION, (desc))

/* tern_workers_count returns the number of workers. */
TERN_EXTERN uint32_t tern_workers_count(const tern_workers *w);

/*
 * tern_workers_get_driver returns the driver of worker |i| (NULL when out
 * of range), to be used only on that worker's thread (in its callbacks) or
 * while the workers are stopped.
 */
TERN_EXTERN tern_driver *tern_workers_get_driver(const tern_workers *w,
                                                 uint32_t i);

/* tern_workers_stop stops every thread after its current turn and joins
   them; the hubs keep their state (read them now, from this thread).
   tern_workers_start starts them again.  NULL does nothing. */
TERN_EXTERN void tern_workers_stop(tern_workers *w);

/* tern_workers_del stops the workers and frees everything (hubs,
   drivers, inboxes, loops, sockets).  NULL does nothing. */
TERN_EXTERN void tern_workers_del(tern_workers *w);

/* ---- HTTP/1.1: the server a push host needs ------------------------------- */

/*
 * tern_http serves HTTP/1.1 on a driver's loop, through the strict request
 * parser of libtern-posix: a request line, headers, Content-Length bodies,
 * keep-alive and pipelining, every size bounded.  The host answers each
 * request with tern_http_respond, or turns its connection into a one-way
 * stream of a web framing (tern-web(7)) with tern_http_respond_stream.
 * Bad requests never reach the host: the server answers them itself, as
 * JSON {"error":"..."}, and closes the connection: 400 (malformed), 413
 * (body over max_body), 414 (target over max_target), 417 (an Expect
 * other than 100-continue), 431 (head over max_head, more than
 * max_headers lines), 501 (Transfer-Encoding), 505 (not HTTP/1), 408 (a
 * request that did not arrive within request_timeout).  tern_http(3)
 * gives the rules.
 */
typedef struct tern_http tern_http;
/* tern_http_request is one request: valid from the on_request call until
   it is answered (tern_http_respond, tern_http_respond_error,
   tern_http_respond_stream) or aborted (on_abort). */
typedef struct tern_http_request tern_http_request;

/* TERN_HTTP_OPTIONS_V1 is the first layout of tern_http_options. */
#define TERN_HTTP_OPTIONS_V1 1
/* TERN_HTTP_OPTIONS_VERSION is its layout in this header. */
#define TERN_HTTP_OPTIONS_VERSION TERN_HTTP_OPTIONS_V1

/* tern_http_options configures a server.  Fill it with
   tern_http_options_default; fields are only ever appended. */
typedef struct tern_http_options {
  uint32_t version;
  /* max_target: request-target bytes (414).  2048; 16..65536. */
  size_t max_target;
  /* max_head: request line and headers (431).  8 KiB; 256..1 MiB. */
  size_t max_head;
  /* max_headers: header lines (431).  64; 1..1024. */
  size_t max_headers;
  /* max_body: Content-Length (413).  1 MiB; at most 64 MiB. */
  size_t max_body;
  /* request_timeout: a request must arrive whole within this time of its
     first byte, else 408 and close.  30 s; 0 none. */
  tern_duration request_timeout;
  /* idle_timeout: a keep-alive connection without a request in progress
     or an answer pending is closed after this long.  60 s; 0 none.
     Connections turned into streams have none (the hub's heartbeats keep
     them alive, and the peer's close ends them). */
  tern_duration idle_timeout;
  /* on_request is called on the loop's thread for each complete, valid
     request.  It answers now or later (on the loop's thread, from any
     callback of the driver).  Until it is answered, requests pipelined
     behind it wait.  It may call every function of the hub, the driver
     and this server but tern_http_del and tern_driver_del.  Required. */
  void (*on_request)(void *user_data, tern_http_request *req);
  /* on_abort is called when the connection of a request that was not
     answered yet closes: the request is freed when it returns.  Optional
     (a host that answers every request inside on_request needs none). */
  void (*on_abort)(void *user_data, tern_http_request *req);
  /* user_data is passed to on_request and on_abort. */
  void *user_data;
  /* reuseport: nonzero listens with SO_REUSEPORT, so that the servers of
     several drivers (one per worker thread) share one port and the kernel
     spreads connections over them.  0. */
  uint32_t reuseport;
} tern_http_options;

/* tern_http_options_default_versioned fills the fields of layout
   |version| of |o| with the defaults and sets o->version (an unknown
   |version| sets it to 0, which tern_http_listen refuses).  NULL does
   nothing.  Call it through the macro. */
TERN_EXTERN void tern_http_options_default_versioned(uint32_t version,
                                                     tern_http_options *o);
#define tern_http_options_default(o) \
  tern_http_options_default_versioned(TERN_HTTP_OPTIONS_VERSION, (o))

/*
 * tern_http_new makes a server for driver |d| with options |o| (copied)
 * and stores it in |*ph|.  It listens nowhere yet: see tern_http_listen
 * and tern_http_adopt.  Delete it before tern_driver_del.  Returns 0, TERN_ERR_INVALID (NULL
 * arguments, an unknown version, no on_request, a limit out of range) or
 * TERN_ERR_NOMEM.
 */
TERN_EXTERN int tern_http_new(tern_http **ph, tern_driver *d,
                              const tern_http_options *o);

/*
 * tern_http_listen listens on TCP |host| |port| (as tern_driver_listen:
 * NULL or "" is 127.0.0.1, port 0 a free one stored in |*pport|) and
 * serves HTTP there.  Returns what tern_driver_listen returns.
 */
TERN_EXTERN int tern_http_listen(tern_http *h, const char *host, uint16_t port,
                                 uint16_t *pport);

/* tern_http_adopt serves HTTP on the connected socket |fd| (the driver
   owns it from then on, also on failure).  Returns what tern_driver_adopt
   returns. */
TERN_EXTERN int tern_http_adopt(tern_http *h, int fd);

/* tern_http_del stops the server's listeners, closes its connections
   (streams too; on_abort for requests not answered yet; bytes not sent
   are dropped) and frees it.  Call it on the loop's thread, or while the
   loop is stopped, before tern_driver_del, and when no other thread may
   forward to it any more.  NULL does nothing. */
TERN_EXTERN void tern_http_del(tern_http *h);

/* tern_http_stats holds a server's counters since tern_http_new, and
   gauges of now.  Fields are only ever appended. */
typedef struct tern_http_stats {
  uint64_t connections;    /* HTTP connections open now (streams too)    */
  uint64_t accepted;       /* connections accepted or adopted             */
  uint64_t requests;       /* valid requests handed to on_request         */
  uint64_t responses;      /* answers given by the host (not streams)     */
  uint64_t bad_requests;   /* requests the server refused itself          */
  uint64_t timeouts;       /* 408s and idle connections closed            */
  uint64_t streams;        /* connections serving a stream now            */
  uint64_t streams_opened; /* tern_http_respond_stream calls that worked  */
  uint64_t forwarded;      /* requests forwarded to another server        */
} tern_http_stats;

/* tern_http_get_stats copies the first |size| bytes of the server's
   statistics into |st|, zero past the fields this library knows. */
TERN_EXTERN void tern_http_get_stats(const tern_http *h, tern_http_stats *st,
                                     size_t size);

/* tern_http_request_method returns the method: "GET", "HEAD", "POST",
   "OPTIONS" or "DELETE" (other methods are answered 501 by the server). */
TERN_EXTERN const char *tern_http_request_method(const tern_http_request *r);

/* tern_http_request_path returns the decoded path (starting with '/',
   without the query, no NUL byte inside but not NUL-terminated); its
   length goes to |*len|. */
TERN_EXTERN const char *tern_http_request_path(const tern_http_request *r,
                                               size_t *len);

/*
 * tern_http_request_param finds the query parameter |name| (decoded as a
 * form: '+' is a space, percent escapes decoded; names compared exactly).
 * Returns 0 when absent, 1 when present once, 2 when present more than
 * once (an API usually answers 400); |*value| and |*len| (either may be
 * NULL) get the first value, not NUL-terminated, empty for "name" alone.
 */
TERN_EXTERN int tern_http_request_param(const tern_http_request *r,
                                        const char *name, const char **value,
                                        size_t *len);

/* tern_http_request_param_at returns the |i|-th query parameter (0 first,
   in the order sent, repeated ones included): 1 with its decoded name and
   value (not NUL-terminated; any out-pointer may be NULL), or 0 past the
   last one.  A host walks them to refuse parameters it does not know. */
TERN_EXTERN int tern_http_request_param_at(const tern_http_request *r,
                                           size_t i, const char **name,
                                           size_t *nlen, const char **value,
                                           size_t *vlen);

/* tern_http_request_header finds the first header line |name| (compared
   without case); returns 1 with its value (trimmed, not NUL-terminated)
   in |*value| and |*len| (either may be NULL), or 0 when absent. */
TERN_EXTERN int tern_http_request_header(const tern_http_request *r,
                                         const char *name, const char **value,
                                         size_t *len);

/* tern_http_request_body returns the body (NULL when empty) and its
   length in |*len|. */
TERN_EXTERN const uint8_t *tern_http_request_body(const tern_http_request *r,
                                                  size_t *len);

/* tern_http_request_socket returns the request's socket (for
   tern_socket_fd and tern_socket_get_driver). */
TERN_EXTERN tern_socket *tern_http_request_socket(const tern_http_request *r);

/*
 * tern_http_request_forward hands |r|, with its connection, to the server
 * |to| (another driver's, on another thread maybe): the connection leaves
 * this driver at once, and |to|'s loop parses the request again from its
 * bytes and calls its on_request, where tern_http_request_forwarded
 * returns |arg|; requests pipelined behind it follow it.  A host with one
 * hub per thread sends a request to the thread that owns its session
 * (tern_shard_of), or passes it along every thread to gather from each.
 * Call it on |r|'s loop thread, in on_request or later; |r| is invalid
 * after success.  While answers to earlier (pipelined) requests are still
 * being sent the connection waits for them, then goes; if it closes
 * first, on_abort is called for |r| (with tern_http_request_forwarded
 * returning |arg|).  If the connection cannot be taken over by |to|, it
 * is closed and |arg| is lost.  Returns 0, TERN_ERR_INVALID (NULL |r| or
 * |to|), TERN_ERR_STATE (answered already) or TERN_ERR_NOMEM (|r| stays
 * unanswered).
 */
TERN_EXTERN int tern_http_request_forward(tern_http_request *r, tern_http *to,
                                          void *arg);

/* tern_http_request_forwarded returns the |arg| of the
   tern_http_request_forward that brought |r| here, or NULL. */
TERN_EXTERN void *tern_http_request_forwarded(const tern_http_request *r);

/* tern_http_request_set_user_data attaches the host's pointer to the
   request (NULL at first); tern_http_request_get_user_data returns it. */
TERN_EXTERN void tern_http_request_set_user_data(tern_http_request *r,
                                                 void *user_data);
TERN_EXTERN void *tern_http_request_get_user_data(const tern_http_request *r);

/*
 * tern_http_respond answers |r| with |status| (200..599), Content-Type
 * |content_type| (NULL: none), the header lines |headers| (NULL, or lines
 * "Name: value\r\n", written as given after the server's own), and |len|
 * bytes of |body| (copied; left out, with its Content-Length kept, for a
 * HEAD request).  The server writes Content-Length and the Connection
 * header and keeps the connection for the next request unless the client
 * asked otherwise.  |r| is invalid afterwards.  Returns 0,
 * TERN_ERR_INVALID (NULL |r|, a status out of range, |headers| that are
 * not CRLF-ended "Name: value" lines, a content type with CR or LF),
 * TERN_ERR_STATE (answered already) or TERN_ERR_NOMEM (the request stays
 * unanswered).
 */
TERN_EXTERN int tern_http_respond(tern_http_request *r, int status,
                                  const char *content_type,
                                  const char *headers, const void *body,
                                  size_t len);

/* tern_http_respond_error answers |r| with |status| and the JSON body
   {"error":"<message>"} (escaped; NULL: the status's reason phrase),
   with Cache-Control: no-store and |headers| as above.  Returns as
   tern_http_respond. */
TERN_EXTERN int tern_http_respond_error(tern_http_request *r, int status,
                                        const char *headers,
                                        const char *message);

/*
 * tern_http_respond_stream turns the request's connection into a one-way
 * connection of the web framing opts->framing (TERN_FRAMING_SSE, _NDJSON
 * or _POLL) on the driver's hub: tern_conn_new_stream with |opts|, then
 * the status line and headers are written by the server (200, the
 * framing's Content-Type, Cache-Control: no-store, for SSE
 * X-Accel-Buffering: no, |headers|, Connection: close; the body ends
 * with the connection) and the hub's bytes follow as the driver pulls
 * them.  A poll's head waits for its answer: 200 with the JSON array, or
 * 204 when its hold time passed with nothing to send.  The connection
 * carries no other request: bytes the client sends on it are ignored.
 * The tern_conn's user data is the socket, as for binary connections (in
 * on_event, tern_conn_get_user_data(ev->conn) is a tern_socket); the
 * connection is deleted when the socket closes.  |*pconn| (when not NULL)
 * gets the connection.  |r| is invalid after success.  Returns 0, the
 * errors of tern_conn_new_stream (TERN_ERR_INVALID, TERN_ERR_TOO_LARGE,
 * TERN_ERR_LIMIT, TERN_ERR_NOMEM: |r| then stays unanswered, for the
 * host to answer), TERN_ERR_INVALID (bad |headers|, a HEAD request) or
 * TERN_ERR_STATE (answered already).
 */
TERN_EXTERN int tern_http_respond_stream(tern_http_request *r,
                                         const tern_stream_opts *opts,
                                         const char *headers,
                                         tern_conn **pconn);

/*
 * tern_http_respond_websocket upgrades the request's connection to a
 * WebSocket connection of the hub (tern-web(7)): the server checks the
 * upgrade (GET, HTTP/1.1, "Upgrade: websocket", "upgrade" among the
 * Connection options, then tern_ws_handshake with the Sec-WebSocket-*
 * headers), creates the connection with tern_conn_new_stream, writes the
 * 101 answer (|headers| added) and from then on hands the socket's bytes
 * to tern_conn_read and the hub's to the socket.  The subprotocol is the
 * client's choice of "tern.bin" and "tern.json"; a client that offers
 * none gets opts->framing (TERN_FRAMING_WS_BIN or _WS_JSON), or is
 * refused when it is 0.  For tern.json the connection is bound to
 * opts->key with its resume, as for SSE; for tern.bin the key and resume
 * of |opts| are not used (the peer's HELLO names its session, and
 * settings.hello_accept applies).  The tern_conn's user data is the
 * socket; |*pconn| (when not NULL) gets the connection; |r| is invalid
 * after success.  Returns 0; TERN_ERR_PROTO when the request is no valid
 * upgrade, which the server answered itself (400, or 426 with
 * "Sec-WebSocket-Version: 13"; |r| is invalid then too); the errors of
 * tern_conn_new_stream (TERN_ERR_INVALID, TERN_ERR_TOO_LARGE,
 * TERN_ERR_LIMIT, TERN_ERR_NOMEM: |r| stays unanswered, for the host to
 * answer); TERN_ERR_INVALID (NULL |r| or |opts|, bad |headers|) or
 * TERN_ERR_STATE (answered already).
 */
TERN_EXTERN int tern_http_respond_websocket(tern_http_request *r,
                                            const tern_stream_opts *opts,
                                            const char *headers,
                                            tern_conn **pconn);

/* ---- HTTP/1.1: the client web hooks need ---------------------------------- */

/*
 * tern_http_client makes HTTP/1.1 requests on a driver's loop, without
 * blocking: numeric IPv4 and IPv6 hosts and "localhost", plain TCP, one
 * connection per request ("Connection: close"), a connect timeout and a
 * timeout for the whole exchange, and a strict bounded response parser
 * (status line, headers, Content-Length, chunked or close-delimited
 * bodies; 1xx interim answers skipped).  The answer, or the transport
 * error that stood in for it, comes back through a callback on the loop's
 * thread.  tern_http_client_new(3) gives the rules.
 */
typedef struct tern_http_client tern_http_client;

/* TERN_HTTP_CLIENT_OPTIONS_V1 is the first layout of
   tern_http_client_options. */
#define TERN_HTTP_CLIENT_OPTIONS_V1 1
/* TERN_HTTP_CLIENT_OPTIONS_VERSION is its layout in this header. */
#define TERN_HTTP_CLIENT_OPTIONS_VERSION TERN_HTTP_CLIENT_OPTIONS_V1

/* tern_http_client_options configures a client.  Fill it with
   tern_http_client_options_default; fields are only ever appended. */
typedef struct tern_http_client_options {
  uint32_t version;
  /* connect_timeout: the TCP connection must be up within this time of
     the send.  5 s; 1 ms..1 h. */
  tern_duration connect_timeout;
  /* timeout: the whole answer must be in within this time of the send.
     10 s; 1 ms..1 h, at least connect_timeout. */
  tern_duration timeout;
  /* max_head: status line and header lines of an answer.  8 KiB;
     256..1 MiB. */
  size_t max_head;
  /* max_headers: header lines (and trailer lines) of an answer.  64;
     1..1024. */
  size_t max_headers;
  /* max_body: the longest body an answer may have (more is an error);
     the first keep_body bytes of it are handed over, the rest dropped.
     1 MiB; at most 64 MiB. */
  uint64_t max_body;
  /* keep_body: body bytes kept for the callback.  4 KiB; at most
     max_body and 1 MiB. */
  size_t keep_body;
  /* max_requests: requests outstanding at once; more is TERN_ERR_FULL.
     256; 1..65536. */
  uint32_t max_requests;
} tern_http_client_options;

/* tern_http_client_options_default_versioned fills the fields of layout
   |version| of |o| with the defaults and sets o->version (an unknown
   |version| sets it to 0, which tern_http_client_new refuses).  NULL does
   nothing.  Call it through the macro. */
TERN_EXTERN void
tern_http_client_options_default_versioned(uint32_t version,
                                           tern_http_client_options *o);
#define tern_http_client_options_default(o) \
  tern_http_client_options_default_versioned(                     \
      TERN_HTTP_CLIENT_OPTIONS_VERSION, (o))

/* tern_http_client_request is one request to make.  Read during
   tern_http_client_send and not kept: everything is copied. */
typedef struct tern_http_client_request {
  /* method: a token ("GET", "POST", ...).  Required. */
  const char *method;
  /* url: "http://HOST[:PORT][/PATH[?QUERY]]", |urllen| bytes: HOST a
     numeric IPv4 address, "[IPv6]" or "localhost" (127.0.0.1), PORT 80
     when absent, PATH "/" when absent; visible ASCII, no '#'. */
  const char *url;
  size_t urllen;
  /* query: appended after "?" (or "&" when the URL has a query already),
     as given (percent-encoded by the caller).  NULL or 0: none. */
  const char *query;
  size_t querylen;
  /* headers: |nheaders| header lines to send after Host (names are
     tokens, values without CR, LF or NUL); the client adds Host,
     Content-Length (when there is a body or the method is POST) and
     "Connection: close".  tern_hook_header's layout: a hook's request
     passes its headers as they are. */
  const tern_hook_header *headers;
  size_t nheaders;
  /* body: |bodylen| bytes sent with Content-Length.  NULL and 0: none. */
  const void *body;
  size_t bodylen;
} tern_http_client_request;

/* tern_http_client_answer is what came back: valid during the callback
   only. */
typedef struct tern_http_client_answer {
  /* error: 0 when an answer came, else the transport error and status 0:
     TERN_ERR_CLOSED (connection refused, reset, or closed before the
     answer ended), TERN_ERR_LIMIT (a timeout), TERN_ERR_PROTO (a
     malformed answer), TERN_ERR_TOO_LARGE (an answer over a limit),
     TERN_ERR_STORE (a system call failed; errno is lost by then). */
  int error;
  /* status: 200..599 (the final answer), 0 with an error. */
  int status;
  /* retry_after: the first Retry-After value (trimmed, not
     NUL-terminated), NULL when absent. */
  const char *retry_after;
  size_t retry_afterlen;
  /* body: its first keep_body bytes (NULL when empty); bodylen their
     count; body_total the whole body's length. */
  const uint8_t *body;
  size_t bodylen;
  uint64_t body_total;
} tern_http_client_answer;

/* tern_http_client_cb receives the answer to a request, on the loop's
   thread, exactly once per successful tern_http_client_send (unless the
   client is deleted first).  It may send again; it may not delete the
   client. */
typedef void (*tern_http_client_cb)(void *user_data,
                                    const tern_http_client_answer *a);

/*
 * tern_http_client_new makes a client on driver |d|'s loop with options
 * |o| (NULL: defaults; copied) and stores it in |*pc|.  Delete it before
 * tern_driver_del.  Returns 0, TERN_ERR_INVALID (NULL arguments, an
 * unknown version, an option out of range), TERN_ERR_NOMEM or the loop's
 * timer_add error.
 */
TERN_EXTERN int tern_http_client_new(tern_http_client **pc, tern_driver *d,
                                     const tern_http_client_options *o);

/*
 * tern_http_client_send starts request |req| (copied) and returns at
 * once; |cb| gets the answer with |user_data| later, never from inside
 * this call.  Returns 0, TERN_ERR_INVALID (NULL arguments, a URL or
 * header the client cannot send), TERN_ERR_TOO_LARGE (a request over
 * 64 MiB), TERN_ERR_FULL (max_requests outstanding), TERN_ERR_NOMEM (no
 * memory, or no socket could be made) or the loop's io_add error; |cb| is
 * not called after an error.  A failure to connect is no error
 * here: it comes to |cb| as TERN_ERR_CLOSED.
 */
TERN_EXTERN int tern_http_client_send(tern_http_client *c,
                                      const tern_http_client_request *req,
                                      tern_http_client_cb cb,
                                      void *user_data);

/* tern_http_client_pending returns the requests outstanding (sent, not
   yet answered). */
TERN_EXTERN uint32_t tern_http_client_pending(const tern_http_client *c);

/* tern_http_client_del closes the connections of the requests still
   outstanding (their callbacks are not called) and frees the client.
   Not from inside its callback.  NULL does nothing. */
TERN_EXTERN void tern_http_client_del(tern_http_client *c);

/* ---- web hooks on the loop ------------------------------------------------- */

/*
 * tern_hook_sender makes the web hooks of a driver's hub go out
 * (tern-hooks(7)): in every turn of the driver it takes the requests due
 * (tern_hub_next_hook_request), makes them with a tern_http_client whose
 * target URL is the hook's target, and reports each answer
 * (tern_hub_hook_done: the status, Retry-After and body, or
 * TERN_HOOK_NO_ANSWER for a transport error or a timeout).  The driver's
 * timer follows the hub's expiry, so batches and retries go out on time.
 */
typedef struct tern_hook_sender tern_hook_sender;

/* tern_hook_sender_stats holds a sender's counters since it was made. */
typedef struct tern_hook_sender_stats {
  uint64_t requests;       /* requests taken from the hub                   */
  uint64_t answered;       /* answers with a status                         */
  uint64_t no_answer;      /* transport errors and timeouts                 */
  uint64_t refused;        /* requests the client refused (a bad URL...)   */
  uint32_t outstanding;    /* requests on the wire now                      */
} tern_hook_sender_stats;

/*
 * tern_hook_sender_new makes a sender for the hub of driver |d| with the
 * client options |o| (NULL: defaults) and stores it in |*ps|.  One per
 * driver.  A request the client refuses (a target that is no URL it can
 * reach) is reported as TERN_HOOK_NO_ANSWER.  Delete it before
 * tern_driver_del.  Returns 0, TERN_ERR_INVALID, TERN_ERR_STATE (the
 * driver has a sender), TERN_ERR_NOMEM or the error of
 * tern_http_client_new.
 */
TERN_EXTERN int tern_hook_sender_new(tern_hook_sender **ps, tern_driver *d,
                                     const tern_http_client_options *o);

/* tern_hook_sender_get_stats copies the first |size| bytes of the
   sender's counters into |st|, zero past the fields this library
   knows. */
TERN_EXTERN void tern_hook_sender_get_stats(const tern_hook_sender *s,
                                            tern_hook_sender_stats *st,
                                            size_t size);

/* tern_hook_sender_del closes the requests on the wire (the hub gets no
   answer for them: they stay outstanding in it until the hub is deleted)
   and frees the sender.  NULL does nothing. */
TERN_EXTERN void tern_hook_sender_del(tern_hook_sender *s);

/* ---- subscriber tokens ------------------------------------------------------ */

/* TERN_TOKEN_MAX is the longest token tern_token_make writes: 20 digits
   of expiry, '.', 64 hex digits. */
#define TERN_TOKEN_MAX 85

/*
 * tern_token_make writes the subscriber token for session |key| (|keylen|
 * bytes) expiring at |expiry| (Unix seconds, at least 1) into |out|
 * (|cap| bytes; no NUL is written): "E.H" where E is |expiry| in decimal
 * and H the lowercase hex HMAC-SHA256 under |secret| of the key, '.' and
 * E.  Returns its length, or 0 when |cap| is too small or an argument is
 * NULL.  Any thread.
 */
TERN_EXTERN size_t tern_token_make(char *out, size_t cap, const void *secret,
                                   size_t secretlen, const uint8_t *key,
                                   size_t keylen, uint64_t expiry);

/*
 * tern_token_check checks |token| (|tokenlen| bytes) for session |key| at
 * |now| (Unix seconds).  The HMAC is compared in constant time.  Returns
 * 0 (valid), TERN_ERR_INVALID (malformed, wrong, or NULL arguments) or
 * TERN_ERR_STATE (well made but its expiry is not after |now|).  Any
 * thread.
 */
TERN_EXTERN int tern_token_check(const char *token, size_t tokenlen,
                                 const void *secret, size_t secretlen,
                                 const uint8_t *key, size_t keylen,
                                 uint64_t now);

#ifdef __cplusplus
}
#endif

#endif /* TERN_POSIX_H */
