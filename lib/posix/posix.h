/*
 * What the files of lib/posix share and nothing outside them sees: the
 * driver's structs, and the hooks by which tern_workers moves a binary
 * connection from the hub that accepted it to the hub owning its session.
 */
#ifndef TERN_POSIX_INTERNAL_H
#define TERN_POSIX_INTERNAL_H

#include <stddef.h>

#include <tern_posix.h>

/* The most bytes a binary connection may send before its HELLO is taken
   (HELLO with the longest key and token fits with room to spare); the
   bytes are kept for a hand-over only while the driver records them. */
#define POSIX_HELLO_RECORD 4096

/* Bytes a socket did not take: bytes[off..len), never empty (the block
   goes once they are written), in a block of out_cap (<= 64 MiB) bytes. */
typedef struct posix_held {
  uint32_t off, len;
  uint8_t bytes[];
} posix_held;

/* What a socket is served with: its driver, its handler (NULL: the
   binary framing) and the handler's user.  Every socket of a listener or
   of a tern_http server has the same, so the sockets share one and keep
   a pointer.  Host bindings are on the driver's list and counted: each
   socket and listener using one holds a reference, and the last one gone
   frees it, whoever of them (a listener, a server) goes first. */
typedef struct posix_binding {
  tern_driver *d;
  const tern_socket_handler *h;
  void *user;
  size_t refs;
  struct posix_binding *prev, *next; /* the driver's list */
} posix_binding;

/* A binary socket's bytes read before its HELLO took, recorded for a
   hand-over, with the binding the socket uses meanwhile: the record costs
   the socket no field.  |bytes| comes first, so that the record is a
   block of bytes the hand-over can take and free. */
typedef struct posix_hello {
  uint8_t bytes[POSIX_HELLO_RECORD];
  posix_binding b; /* the driver's binary one, copied */
  uint16_t len;
} posix_hello;

/* Kept small, as an idle subscriber holds one for as long as it stays:
   72 bytes (an 80-byte block). */
struct tern_socket {
  posix_binding *b;                /* driver, handler, user: shared (a
                                      recording binary socket's is in its
                                      posix_hello)                        */
  void *io;
  void *user_data;
  tern_conn *conn;                 /* binary sockets, converted streams
                                      (posix_socket_set_conn: of the
                                      handler only close is called)       */
  posix_held *out;                 /* NULL while none is held             */
  tern_socket *prev, *next;        /* every live socket of the driver; once
                                      dead, prev chains the dead list and
                                      next is left as it was               */
  tern_socket *next_dirty;
  int fd;
  unsigned watching : 2;           /* TERN_IO_READ, _WRITE the loop watches */
  unsigned pull_done : 1;          /* pull said everything was given      */
  unsigned ending : 1;             /* tern_socket_end or a read error     */
  unsigned dead : 1;               /* closed; freed at the end of process */
  unsigned dirty : 1;              /* on the driver's dirty list          */
  unsigned recording : 1;          /* |b| is in a posix_hello             */
};

/* The HELLO record of binary socket |s|, or NULL when it keeps none. */
static inline posix_hello *posix_socket_hello(const tern_socket *s) {
  return s->recording
             ? (posix_hello *)(void *)((char *)s->b - offsetof(posix_hello, b))
             : NULL;
}

/* Frees the HELLO record of |s|, if any (bound where it is). */
void posix_socket_drop_hello(tern_socket *s);

/* The bytes |s| holds, not yet taken by the kernel. */
static inline size_t posix_socket_held(const tern_socket *s) {
  return s->out ? (size_t)(s->out->len - s->out->off) : 0;
}

/* hello_hook, when set, sees each CONN_HELLO before on_event; it returns
   1 when it took the connection away (its socket is gone then). */
typedef int (*posix_hello_hook)(void *arg, tern_driver *d, tern_socket *s,
                                const tern_event *ev);

void posix_driver_set_hello_hook(tern_driver *d, posix_hello_hook hook,
                                 void *arg);

/* Takes binary socket |s| off its driver without closing its fd:
   the tern_conn is deleted (no end event), the loop stops watching, and
   the socket and the bytes recorded before its HELLO go to the caller
   (*phello malloc'ed or NULL; free it). */
void posix_stream_detach(tern_socket *s, int *pfd, uint8_t **phello,
                         size_t *phello_len);

/* Serves |fd| as a binary socket on |d| and hands it |len| bytes as if
   just read (a HELLO received by another driver).  The driver owns |fd|
   from then on.  0 or an error (|fd| closed). */
int posix_driver_adopt_replay(tern_driver *d, int fd, const uint8_t *bytes,
                              size_t len);

/* A listening TCP socket on |host| |port| (SO_REUSEPORT when |reuseport|),
   non-blocking; the fd, or a negative tern_error. */
int posix_listen_socket(const char *host, uint16_t port, int reuseport,
                        uint16_t *pport);

/* The binding of |h| and |user| on |d|, with a reference for the caller
   (posix_binding_put), or NULL when out of memory. */
posix_binding *posix_binding_get(tern_driver *d, const tern_socket_handler *h,
                                 void *user);
/* Drops a reference to |b| (NULL does nothing). */
void posix_binding_put(posix_binding *b);

/* Serves connections accepted on the listening socket |fd| (owned by the
   driver from then on, closed on failure) with host binding |b|, taking a
   reference to it. */
int posix_driver_listen_fd(tern_driver *d, int fd, posix_binding *b);

/* tern_driver_adopt with host binding |b| (a reference is taken). */
int posix_driver_adopt_bound(tern_driver *d, int fd, posix_binding *b,
                             tern_socket **ps);

/* The allocator of a driver and its inboxes: the host's tern_mem
   (tern_driver_options.mem) or libc. */
void *posix_malloc(const tern_driver *d, size_t size);
void *posix_calloc(const tern_driver *d, size_t n, size_t size);
void posix_free(const tern_driver *d, void *ptr);
/* |*m| = |*host|, or libc's functions when |host| is NULL. */
void posix_mem_init(tern_mem *m, const tern_mem *host);
/* 1 when |m| is NULL or has its four functions. */
int posix_mem_valid(const tern_mem *m);
/* The bytes of tern_driver_options in layout |version|; 0 unknown. */
size_t posix_driver_options_size(uint32_t version);

/* Closes every host listener of |d| serving |user| (tern_http_del). */
void posix_driver_unlisten(tern_driver *d, const void *user);

/* Closes every host socket of |d| whose handler's user is |user|
   (tern_http_del), converted ones included. */
void posix_driver_close_sockets(tern_driver *d, const void *user);

/* Turns host socket |s| into a connection socket: from now on the driver
   reads into |conn| and writes what it gives, as for a binary socket, and
   of |b|'s handler calls only close (a reference to |b| is taken).  Its
   user data is reset to NULL.  The bytes the socket already holds go
   first. */
void posix_socket_set_conn(tern_socket *s, tern_conn *conn, posix_binding *b);

/* The driver's loop methods and loop pointer. */
const tern_loop_methods *posix_driver_methods(const tern_driver *d,
                                              void **ploop);

/* A turn hook runs in every pass of the driver's process(), after the
   hub's due deadlines were handled and before its events are taken: the
   hook sender takes the hub's due hook requests there, so that the
   driver's timer (armed at tern_hub_get_expiry) never sees a request due
   that nobody takes.  One per driver: TERN_ERR_STATE when one is set
   already; |fn| NULL clears it. */
typedef void (*posix_turn_hook)(void *arg, tern_tstamp now);
int posix_driver_set_turn_hook(tern_driver *d, posix_turn_hook fn, void *arg);

/* Internal: the inbox's hand-over of a connection (tern_workers). */
int posix_inbox_handover(tern_inbox *in, int fd, uint8_t *hello,
                         size_t hello_len);

#endif
