/*
 * A strict HTTP/1.1 response parser, the client side of lib/http: bytes in
 * any chunking, a status, the few headers a push host acts on, and the
 * body's framing (Content-Length, chunked, or the connection's close).
 * No sockets, no clock and no allocation: the caller lends the head
 * buffer and the buffer the body is kept in.
 *
 *   http_resp_init(&p, head, sizeof(head), body, sizeof(body), &lim);
 *   while reading:
 *     r = http_resp_feed(&p, in, len, &used);
 *     if (r == HTTP_RESP_DONE) { p.status, p.retry_after, p.body ...; }
 *     if (r == HTTP_RESP_ERROR) { p.error says why; close }
 *   on the peer's close: r = http_resp_eof(&p);
 *
 * Decisions:
 *  - Lines end with CRLF; a bare LF or CR in the head is an error (as the
 *    request parser: line ends that a peer and we read differently are
 *    how responses get smuggled).
 *  - The status line is "HTTP/1.x SP 3DIGIT [SP reason]" with status
 *    100..599; another major version, or no digit of minor, is an error.
 *  - 1xx answers other than 101 are interim: skipped, the final answer
 *    follows on the same connection.  101 is an error (we never ask to
 *    switch protocols).
 *  - Header names are tokens, no space before the colon, no obs-fold, no
 *    control character in a value.
 *  - Content-Length: 1*DIGIT (no list), repeated lines must agree.
 *    Transfer-Encoding: only "chunked", alone (case-insensitive); with a
 *    Content-Length it is an error (RFC 9112 §6.3 lets a client reject).
 *  - Neither: the body runs to the close (RFC 9112 §6.3, point 8), and
 *    the connection cannot be kept.  204, 304 and answers to HEAD have no
 *    body whatever the headers say.
 *  - Chunked: hex sizes of at most 15 digits, extensions skipped (within
 *    the line limit), CRLF after each chunk's data, trailer lines counted
 *    against max_head and max_headers and otherwise ignored.
 *  - Retry-After and Connection are kept (first line of each); the body's
 *    first |bodycap| bytes are kept, the rest counted and dropped, and a
 *    body over max_body is an error.
 *
 * Errors are TERN_ERR_PROTO (malformed) and TERN_ERR_TOO_LARGE (a limit);
 * http_resp_feed consumes nothing past the byte that made the error.
 */
#ifndef TERN_HTTP_RESPONSE_H
#define TERN_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

enum {
  HTTP_RESP_ERROR = -1, /* p->error, p->reason: give up the connection   */
  HTTP_RESP_MORE = 0,   /* every byte consumed; feed more (or the eof)    */
  HTTP_RESP_DONE = 1    /* the answer is complete                         */
};

typedef struct http_resp_limits {
  size_t max_headers; /* header and trailer lines                        */
  uint64_t max_body;  /* body bytes on the wire, after de-chunking       */
} http_resp_limits;

/* Internal states; only the parser reads them. */
enum http_resp_state {
  HTTP_R_STATUS = 0,
  HTTP_R_HEADER,
  HTTP_R_BODY,        /* Content-Length bytes                           */
  HTTP_R_CLOSE,       /* to the connection's close                      */
  HTTP_R_CHUNK_SIZE,
  HTTP_R_CHUNK_DATA,
  HTTP_R_CHUNK_END,   /* the CRLF after a chunk's data                  */
  HTTP_R_TRAILER,
  HTTP_R_DONE,
  HTTP_R_ERROR
};

typedef struct http_resp {
  http_resp_limits lim;
  int head_request;      /* set before feeding: the request was HEAD      */
  enum http_resp_state state;
  char *head;            /* the caller's: the current line, then kept    */
  size_t headcap, headlen, line_start;
  uint8_t *keep;         /* the caller's: the body's first bytes         */
  size_t keepcap;
  size_t nlines;         /* header and trailer lines so far             */
  int cr;                /* a CR ended the last byte of a line          */
  uint64_t remaining;    /* BODY, CHUNK_DATA: bytes left                */
  /* Results: valid at DONE (status and headers from the head's end). */
  int status;            /* 100..599                                    */
  int minor;             /* HTTP/1.minor                                */
  int keep_alive;        /* the connection may carry another request    */
  int chunked;
  int has_length;
  uint64_t content_length;
  const char *retry_after; /* in |head|; NULL when absent               */
  size_t retry_afterlen;
  uint64_t bodylen;      /* the whole body's length                     */
  size_t kept;           /* bytes of it in |keep|                        */
  int error;             /* TERN_ERR_PROTO or TERN_ERR_TOO_LARGE        */
  const char *reason;    /* static text                                 */
} http_resp;

/* http_resp_init prepares |p|: |head| (|headcap| bytes, at least 64)
   holds a head's lines; |keep| (|keepcap| bytes, may be NULL and 0) the
   body's first bytes; |lim| NULL takes 64 lines and 1 MiB.  Both buffers
   must outlive the parse. */
void http_resp_init(http_resp *p, char *head, size_t headcap, uint8_t *keep,
                    size_t keepcap, const http_resp_limits *lim);

/* http_resp_feed feeds |len| bytes; *|used| gets those consumed (fewer
   than |len| only at DONE, where the rest belongs to whatever follows,
   or at ERROR). */
int http_resp_feed(http_resp *p, const uint8_t *in, size_t len,
                   size_t *used);

/* http_resp_eof tells the parser that the peer closed: DONE for a body
   that runs to the close, ERROR (TERN_ERR_PROTO, an answer cut short)
   otherwise, or the state's result when it is DONE or ERROR already. */
int http_resp_eof(http_resp *p);

#endif
