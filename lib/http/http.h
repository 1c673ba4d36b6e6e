/*
 * A strict, minimal HTTP/1.1 server side: a sans-I/O request parser and a
 * response writer.  The base of ternd's HTTP server (libtern-posix links
 * it; the core library does not).  No sockets, no clock: bytes in,
 * requests out; responses into the caller's buffer.
 *
 * The parser is built for a non-blocking loop with keep-alive and
 * pipelining.  The server feeds whatever it read, in any chunking:
 *
 *   while (have bytes) {
 *     int r = http_parse(&p, in, len, &used);
 *     in += used; len -= used;
 *     if (r == HTTP_PARSE_MORE) break;            // all consumed, read more
 *     if (r == HTTP_PARSE_ERROR) {                // answer, then close
 *       write http_error()'s status and reason; stop reading; break
 *     }
 *     req = http_parser_request(&p);              // r == HTTP_PARSE_DONE
 *     answer req;
 *     if (http_parser_closing(&p)) close after the answer; break
 *     http_parser_next(&p);                       // next pipelined request
 *   }
 *   if (http_parser_idle(&p)) http_parser_trim(&p);
 *
 * http_parse consumes bytes only up to the end of the current request (the
 * rest stays with the caller for the next one).  On an error it stops at
 * once: a line is judged when its LF arrives, so nothing past that LF is
 * consumed; a limit is judged as bytes arrive, so nothing past the limit
 * is.  The result never depends on how the bytes were cut into reads.
 *
 * The head is copied into a buffer the parser owns, which grows (from 1 KB,
 * doubling) to at most max_head; the body goes into that buffer's spare
 * room, or into a buffer of its own (exactly Content-Length bytes) that
 * http_parser_next gives back.  http_parser_trim frees the head buffer
 * while the connection sits idle between requests, so an idle connection
 * holds no buffer at all.  The http_parser struct itself is about 900
 * bytes: a server holding many long-lived streams (SSE, NDJSON, WebSocket)
 * frees it once a connection stops carrying requests, rather than keeping
 * one per idle subscriber.
 *
 * Decisions (RFC 9110/9112 leave them to the server):
 *  - Lines end with CRLF.  A bare LF or a bare CR anywhere in the head is a
 *    400 (RFC 9112 §2.2 allows, not requires, accepting a bare LF; a strict
 *    parser that disagrees with a proxy about line ends invites smuggling).
 *  - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2
 *    SHOULD); they count against max_head.
 *  - Methods GET, POST, HEAD, OPTIONS and DELETE are implemented.  Any
 *    other valid token (PUT, lowercase "get", ...) is a 501: RFC 9110 §9.1 asks
 *    for 501 when a method is not implemented by the server at all; a 405
 *    (method known, not allowed on that resource) is the router's answer.
 *  - Only origin-form targets ("/path?query"); absolute-form, authority-
 *    form and asterisk-form are 400.  A fragment ('#') or a character
 *    outside RFC 3986's set is 400.  Percent escapes must be '%' and two hex
 *    digits (400 otherwise); the decoded path may not hold NUL.
 *  - HTTP/1.1 and HTTP/1.0; HTTP/1.2-1.9 are answered as 1.1 (RFC 9110
 *    §2.5); another major version is 505; anything else 400.
 *  - HTTP/1.1 keeps the connection unless "Connection: close"; HTTP/1.0
 *    closes unless "Connection: keep-alive" (and no "close").
 *  - Transfer-Encoding is not implemented: 501 (RFC 9112 §6.1), 400 when it
 *    comes with Content-Length or in an HTTP/1.0 request (§6.1, §6.3).
 *    Chunked request bodies buy nothing for a push server's small JSON and
 *    payload bodies; every client we target sends Content-Length.
 *  - Content-Length: 1*DIGIT (a comma list is 400); repeated lines must
 *    agree (400); above max_body 413.  No Content-Length: no body.
 *  - Host: required in HTTP/1.1, at most once, reg-name/IP-literal
 *    characters and an optional port (400).
 *  - Header names are tokens; whitespace before the colon, obs-fold and
 *    control characters in values are 400.  Headers captured in
 *    http_request that make sense once (Host, Content-Length aside,
 *    Authorization, Content-Type, Expect, Last-Event-ID, Upgrade,
 *    Sec-WebSocket-Key, Sec-WebSocket-Version) may not repeat (400); list
 *    headers (Connection, Accept, Sec-WebSocket-Protocol) keep the first
 *    line in the struct, every line is reachable through http_header_next.
 *  - "Expect: 100-continue" is flagged (http_parser_take_continue); any
 *    other expectation is 417.
 *  - Query strings are application/x-www-form-urlencoded as browsers send
 *    them: '&' separates, '=' splits name from value, '+' means a space,
 *    percent escapes are decoded; an empty piece ("a&&b") is skipped.
 *  - The path and the parameters are decoded in place, in the request
 *    line's bytes (decoding never lengthens), so the raw target is not
 *    kept; target_len says how long it was.
 *  - Bodies are buffered whole and handed out with the request, not
 *    streamed: ternd's bodies are one message payload or a small JSON
 *    document, which the hub needs in one piece anyway; max_body bounds
 *    the memory.
 *  - Limits: request target > max_target 414; head > max_head 431; more
 *    than max_headers lines 431; more than HTTP_MAX_PARAMS query parameters
 *    400; body > max_body 413.
 *
 * Every error sets a status code and a short reason (static text), puts
 * the parser in its error state (keep_alive is then 0: answer and close)
 * and consumes nothing past the offending byte.
 */
#ifndef TERN_HTTP_HTTP_H
#define TERN_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* ---- limits ------------------------------------------------------------ */

typedef struct http_limits {
  size_t max_target;  /* request-target bytes, raw           (414) */
  size_t max_head;    /* request line + headers + CRLFs      (431) */
  size_t max_headers; /* header field lines                  (431) */
  size_t max_body;    /* Content-Length                      (413) */
} http_limits;

#define HTTP_DEFAULT_MAX_TARGET 2048
#define HTTP_DEFAULT_MAX_HEAD 8192
#define HTTP_DEFAULT_MAX_HEADERS 64
#define HTTP_DEFAULT_MAX_BODY ((size_t)1 << 20)
/* Query parameters kept per request; more is a 400.  ternd's API uses
   at most a dozen; each costs 32 bytes of http_parser. */
#define HTTP_MAX_PARAMS 16

/* http_limits_default fills |lim| with the defaults above. */
void http_limits_default(http_limits *lim);

/* ---- requests ---------------------------------------------------------- */

enum http_method {
  HTTP_GET = 1,
  HTTP_HEAD,
  HTTP_POST,
  HTTP_OPTIONS,
  HTTP_DELETE
};

/* A byte string inside the parser's buffer; p is NULL when absent. */
typedef struct http_slice {
  const char *p;
  size_t len;
} http_slice;

typedef struct http_param {
  http_slice name;  /* decoded */
  http_slice value; /* decoded; empty (not absent) for "name" or "name=" */
} http_param;

/*
 * A parsed request.  Every pointer points into the parser's buffer and
 * stays valid until the next http_parse, http_parser_next, http_parser_trim
 * or http_parser_free on that parser.  Header values have their surrounding
 * whitespace removed.
 */
typedef struct http_request {
  int method;              /* enum http_method                        */
  int minor;               /* 0 or 1: HTTP/1.minor (1.2-1.9 become 1) */
  int keep_alive;          /* 1: the connection may carry another
                              request after this one                  */
  int expect_continue;     /* "Expect: 100-continue" was sent          */
  http_slice path;         /* decoded, starts with '/', no NUL          */
  size_t target_len;       /* raw request-target length                */
  http_param params[HTTP_MAX_PARAMS];
  size_t nparams;
  http_slice host;
  http_slice authorization;
  http_slice content_type;
  http_slice accept;
  http_slice last_event_id;
  http_slice upgrade;
  http_slice ws_key;       /* Sec-WebSocket-Key                        */
  http_slice ws_version;   /* Sec-WebSocket-Version                    */
  http_slice ws_protocol;  /* Sec-WebSocket-Protocol (first line)      */
  int connection_upgrade;  /* "upgrade" among the Connection options   */
  int has_content_length;
  uint64_t content_length;
  const uint8_t *body;     /* content_length bytes; NULL when 0         */
  size_t nheaders;         /* header field lines                       */
  const char *head;        /* the raw field lines and the final empty
                              line, for http_header_next               */
  size_t headlen;
} http_request;

/* ---- parser ------------------------------------------------------------ */

enum {
  HTTP_PARSE_ERROR = -1, /* http_error(); answer it and close            */
  HTTP_PARSE_MORE = 0,   /* every byte consumed; feed more               */
  HTTP_PARSE_DONE = 1    /* a request is ready: http_parser_request()    */
};

/* Internal states; only the parser reads them. */
enum http_state {
  HTTP_S_HEAD = 0,
  HTTP_S_BODY,
  HTTP_S_DONE,
  HTTP_S_ERROR
};

/* An allocator: realloc-like; |n| == 0 frees |ptr| and returns NULL. */
typedef void *(*http_realloc_fn)(void *user_data, void *ptr, size_t n);

typedef struct http_parser {
  http_limits lim;
  http_realloc_fn realloc_fn; /* NULL: libc                          */
  void *alloc_user_data;
  enum http_state state;
  char *buf;            /* head, then body                           */
  size_t cap;
  size_t len;           /* bytes in buf                              */
  size_t line_start;    /* start of the line being received          */
  size_t headlen;       /* head bytes once the head is complete      */
  int have_request_line;
  int continue_pending; /* 100-continue to send (http_parser_take_...) */
  int status;           /* error status, 0 when no error             */
  const char *reason;   /* error reason, static                      */
  size_t reqline_start; /* after skipped empty lines                 */
  size_t target_off;    /* raw target inside buf                     */
  uint8_t *bodybuf;     /* the body when it does not fit in buf      */
  size_t body_got;      /* body bytes received                       */
  http_request req;
} http_parser;

/* http_parser_init prepares |p| with |lim| (NULL: defaults).  No memory
   is taken until bytes arrive. */
void http_parser_init(http_parser *p, const http_limits *lim);

/* http_parser_set_allocator makes |p| take its buffers from |fn| (NULL:
   libc); call it before the first http_parse.  A failed allocation is a
   503 error. */
void http_parser_set_allocator(http_parser *p, http_realloc_fn fn,
                               void *user_data);

/* http_parser_free gives back the buffer.  |p| may be reinitialised. */
void http_parser_free(http_parser *p);

/*
 * http_parse feeds |len| bytes at |in|.  *used is set to the bytes
 * consumed.  Returns HTTP_PARSE_MORE when all of them were consumed and
 * the request is not complete, HTTP_PARSE_DONE when a request (head and
 * body) is complete (*used may be less than |len|: the rest belongs to
 * the next request), HTTP_PARSE_ERROR on bad input (or when the buffer
 * cannot be allocated: 503).  In the DONE state it consumes nothing until
 * http_parser_next; in the error state it consumes nothing ever again.
 */
int http_parse(http_parser *p, const uint8_t *in, size_t len, size_t *used);

/* http_parser_request is the complete request, or NULL outside the DONE
   state. */
const http_request *http_parser_request(const http_parser *p);

/*
 * http_parser_take_continue returns 1 once per request when the head is
 * complete, it asked for "Expect: 100-continue" (HTTP/1.1), and its body
 * has not arrived: the server then writes "HTTP/1.1 100 Continue" (see
 * http_write_continue).  0 otherwise.
 */
int http_parser_take_continue(http_parser *p);

/* http_parser_next drops the finished request and makes ready for the
   next one on the same connection.  Outside the DONE state it does
   nothing. */
void http_parser_next(http_parser *p);

/* http_parser_trim frees the buffer when no request is in progress (an
   idle keep-alive connection); returns 1 if the parser holds no memory
   afterwards. */
int http_parser_trim(http_parser *p);

/* http_parser_idle: 1 when no byte of a request has arrived (between
   requests), so the server applies its keep-alive idle timeout rather than
   the request timeout (a 408 for a head or body that trickles in). */
int http_parser_idle(const http_parser *p);

/* http_error is the status code to answer (400, 413, 414, 417, 431, 501,
   505, 503), 0 when there is no error; |reason| (may be NULL) gets a short
   static text. */
int http_error(const http_parser *p, const char **reason);

/* http_parser_closing: 1 when the connection must close after the current
   answer (an error, or a request without keep-alive). */
int http_parser_closing(const http_parser *p);

/* ---- lookups (query.c) ------------------------------------------------- */

/*
 * http_param_get finds the query parameter |name| (NUL-terminated, compared
 * with the decoded names, case-sensitively).  Returns 0 when absent, 1
 * when present once, 2 when present more than once (the router decides
 * whether that is a 400); *value (may be NULL) gets the first value.
 */
int http_param_get(const http_request *r, const char *name, http_slice *value);

/*
 * http_param_u64 reads a decimal parameter: 1 and *out set when present
 * once and all digits without overflow; 0 when absent; -1 when repeated,
 * empty, or not a number.
 */
int http_param_u64(const http_request *r, const char *name, uint64_t *out);

/*
 * http_header_next walks every header line named |name| (case-insensitive):
 * start with *pos = 0; returns 1 and sets *value (trimmed) for each line,
 * 0 when there are no more.
 */
int http_header_next(const http_request *r, const char *name, size_t *pos,
                     http_slice *value);

/*
 * http_list_has says whether the comma-separated list |value| (a header
 * value such as Connection or Sec-WebSocket-Protocol) holds the token
 * |token|, case-insensitively.
 */
int http_list_has(http_slice value, const char *token);

/* http_pct_decode decodes |len| bytes of a URI component at |src| into
   |dst| (may equal |src|; needs |len| bytes), '+' as space when |plus|.
   Returns the decoded length, or -1 on a bad escape. */
ptrdiff_t http_pct_decode(char *dst, const char *src, size_t len, int plus);

/* ---- responses (respond.c) --------------------------------------------- */

/* Response header flags. */
#define HTTP_RESP_CLOSE 0x1u       /* Connection: close                    */
#define HTTP_RESP_KEEP_ALIVE 0x2u  /* Connection: keep-alive (for 1.0)     */
#define HTTP_RESP_NO_LENGTH 0x4u   /* no Content-Length: a stream whose
                                      end is the connection's close (RFC
                                      9112 §6.3); pair it with
                                      HTTP_RESP_CLOSE so that nobody waits
                                      to reuse the connection             */
#define HTTP_RESP_SSE 0x8u         /* text/event-stream, Cache-Control:
                                      no-store, X-Accel-Buffering: no       */
#define HTTP_RESP_NO_STORE 0x10u   /* Cache-Control: no-store              */

typedef struct http_response {
  int status;               /* 100..599                                */
  int minor;                /* 1: "HTTP/1.1"; 0: "HTTP/1.0"            */
  unsigned flags;           /* HTTP_RESP_*                             */
  const char *content_type; /* NULL: none (SSE sets its own)           */
  uint64_t content_length;  /* unless HTTP_RESP_NO_LENGTH              */
  int64_t retry_after;      /* seconds; < 0: none                      */
  const char *allow;        /* Allow (405); NULL: none                 */
  const char *extra;        /* more header lines, each ending in CRLF,
                               written as given; NULL: none            */
} http_response;

/* http_response_init: status 200, HTTP/1.1, no body, no Retry-After. */
void http_response_init(http_response *r, int status);

/* http_status_text is the reason phrase for |status| ("Unknown" for codes
   not in the table). */
const char *http_status_text(int status);

/* http_response_size is the exact size of the head http_response_write
   writes. */
size_t http_response_size(const http_response *r);

/* http_response_write writes the status line and headers, ending with the
   empty line, into |buf|; returns the bytes written, or 0 (nothing
   written) when |cap| is less than http_response_size. */
size_t http_response_write(const http_response *r, char *buf, size_t cap);

/* http_error_body_size is the size of {"error":"<reason>"} with |reason|
   escaped as a JSON string. */
size_t http_error_body_size(const char *reason);

/*
 * http_write_error writes a whole error response: head (Content-Type
 * application/json, Content-Length, Cache-Control: no-store, |flags|,
 * Retry-After when |retry_after| >= 0) and the body {"error":"<reason>"}
 * (the head only when |head_only|: a HEAD request).  Returns the bytes
 * written or 0 when |cap| is too small (http_error_size gives it).
 */
size_t http_error_size(int status, const char *reason, unsigned flags,
                       int64_t retry_after, int head_only);
size_t http_write_error(char *buf, size_t cap, int status, const char *reason,
                        unsigned flags, int64_t retry_after, int head_only);

/* http_write_continue writes "HTTP/1.1 100 Continue\r\n\r\n"; returns its
   length (25) or 0 when |cap| is too small. */
size_t http_write_continue(char *buf, size_t cap);

#endif
