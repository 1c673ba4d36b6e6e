/*
 * Attribute filters: the parser (text to a tree on the stack), the
 * compiler (tree to one block holding jump code, values, names and the
 * canonical text) and the matcher (a loop over the code with one result
 * register).  The language is specified in man/tern-filter.7.
 */
#include <string.h>

#include "base/mem.h"
#include "filter/filter.h"

/* ---- compiled form ------------------------------------------------------ */

/* Op codes.  A leaf sets the result register; NOT flips it; JF and JT jump
   to |arg| when it is false or true (the and/or short cut: the register
   already holds the result of the whole and/or). */
enum { OP_CMP, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT, OP_JF, OP_JT };
/* Comparisons, in the order of cmp_names. */
enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
static const char *const cmp_names[] = {"=", "!=", "<", "<=", ">", ">="};

typedef struct fop {
  uint8_t code;
  uint8_t cmp;
  uint16_t name;    /* pool offset of the attribute name */
  uint16_t namelen;
  uint16_t arg;     /* first value (leaves) or jump target (JF, JT) */
  uint16_t nval;    /* values (OP_CMP: 1, in-lists: the list) */
} fop;

typedef struct fval {
  uint16_t off, len; /* in the pool */
  uint8_t num;       /* a bare decimal number: compares numerically */
} fval;

struct filter {
  const fop *ops;
  const fval *vals;
  const uint8_t *pool;
  const char *text;
  size_t nops;
  size_t textlen;
  size_t size; /* of the block */
};

/* ---- parse tree --------------------------------------------------------- */

/* Upper bounds that TERN_MAX_FILTER bytes cannot reach with the limits of
   filter.h (a leaf or a 'not' takes at least 3 bytes, a value 2); checked
   anyway. */
#define MAX_NODES 448
#define MAX_VALS 520

/* N_GONE: an and/or node whose children went to its parent (add_child). */
enum { N_CMP, N_IN, N_NOTIN, N_EXISTS, N_NOT, N_AND, N_OR, N_GONE };

typedef struct node {
  uint8_t kind, cmp;
  uint16_t name, namelen;
  uint16_t val, nval;
  int16_t first, last, next; /* children of NOT, AND, OR; -1 none */
  uint16_t nchild;
} node;

/* Tokens. */
enum {
  T_END, T_WORD, T_STRING, T_LPAREN, T_RPAREN, T_COMMA, T_CMP,
  T_AND, T_OR, T_NOT, T_IN, T_EXISTS
};

typedef struct parser {
  const uint8_t *src;
  size_t len, pos;
  /* The current token: kind, source offset, comparison, and for words and
     strings the unescaped bytes in the pool. */
  int tok;
  size_t tokpos;
  uint8_t tokcmp;
  uint16_t tokoff, toklen;
  int depth, terms;
  uint8_t pool[TERN_MAX_FILTER];
  size_t poollen;
  node nodes[MAX_NODES];
  size_t nnodes;
  fval vals[MAX_VALS];
  size_t nvals;
  int err;
  size_t errpos;
  const char *msg;
  char text[TERN_MAX_FILTER + 1];
  size_t textlen;
} parser;

static int fail(parser *p, int err, size_t pos, const char *msg) {
  if (!p->err) {
    p->err = err;
    p->errpos = pos;
    p->msg = msg;
  }
  return -1;
}

/* ---- bytes -------------------------------------------------------------- */

static int is_word_byte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* utf8_seq returns the length of the well-formed UTF-8 sequence (RFC 3629:
   no overlongs, no surrogates, nothing past U+10FFFF) that starts with
   the non-ASCII byte s[0], or 0. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
  uint8_t c = s[0], lo = 0x80, hi = 0xbf;
  size_t need;
  if (c >= 0xc2 && c <= 0xdf) {
    need = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (n < need + 1 || s[1] < lo || s[1] > hi) {
    return 0;
  }
  for (size_t i = 2; i <= need; ++i) {
    if (s[i] < 0x80 || s[i] > 0xbf) {
      return 0;
    }
  }
  return need + 1;
}

/* is_number: -?[0-9]+(\.[0-9]+)? */
static int is_number(const uint8_t *s, size_t n) {
  size_t i = 0, d;
  if (i < n && s[i] == '-') {
    ++i;
  }
  for (d = i; i < n && is_digit(s[i]); ++i) {
  }
  if (i == d) {
    return 0;
  }
  if (i < n && s[i] == '.') {
    for (d = ++i; i < n && is_digit(s[i]); ++i) {
    }
    if (i == d) {
      return 0;
    }
  }
  return i == n;
}

/* A decimal as the matcher compares it: sign, integer digits without
   leading zeros, fraction digits without trailing zeros. */
typedef struct decimal {
  int neg;
  const uint8_t *ip, *fp;
  size_t il, fl;
} decimal;

static void decimal_of(const uint8_t *s, size_t n, decimal *d) {
  size_t i = 0;
  d->neg = s[0] == '-';
  i = (size_t)d->neg;
  while (i < n && s[i] == '0') {
    ++i;
  }
  d->ip = s + i;
  while (i < n && s[i] != '.') {
    ++i;
  }
  d->il = (size_t)(s + i - d->ip);
  d->fp = s + i + (i < n);
  d->fl = i < n ? n - i - 1 : 0;
  while (d->fl > 0 && d->fp[d->fl - 1] == '0') {
    --d->fl;
  }
  if (d->il == 0 && d->fl == 0) {
    d->neg = 0; /* -0 is 0 */
  }
}

static int sign_of(int v) { return (v > 0) - (v < 0); }

/* num_cmp compares two strings that pass is_number, exactly. */
static int num_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen) {
  decimal x, y;
  decimal_of(a, alen, &x);
  decimal_of(b, blen, &y);
  if (x.neg != y.neg) {
    return x.neg ? -1 : 1;
  }
  int m;
  if (x.il != y.il) {
    m = x.il < y.il ? -1 : 1;
  } else if ((m = sign_of(memcmp(x.ip, y.ip, x.il))) == 0) {
    size_t fl = x.fl < y.fl ? x.fl : y.fl;
    if ((m = sign_of(memcmp(x.fp, y.fp, fl))) == 0) {
      m = (x.fl > y.fl) - (x.fl < y.fl);
    }
  }
  return x.neg ? -m : m;
}

static int byte_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int m = n ? memcmp(a, b, n) : 0;
  if (m != 0) {
    return sign_of(m);
  }
  return (alen > blen) - (alen < blen);
}

/* ---- lexer -------------------------------------------------------------- */

static int keyword(const uint8_t *s, size_t n) {
  static const struct {
    const char *word;
    int tok;
  } kw[] = {{"and", T_AND}, {"or", T_OR}, {"not", T_NOT},
            {"in", T_IN},   {"exists", T_EXISTS}};
  for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); ++k) {
    size_t i = 0;
    if (strlen(kw[k].word) != n) {
      continue;
    }
    while (i < n && (s[i] | 0x20) == (uint8_t)kw[k].word[i]) {
      ++i;
    }
    if (i == n) {
      return kw[k].tok;
    }
  }
  return T_WORD;
}

static int lex_string(parser *p) {
  size_t open = p->pos, i = p->pos + 1;
  p->tokoff = (uint16_t)p->poollen;
  for (;;) {
    if (i >= p->len) {
      return fail(p, TERN_ERR_INVALID, open, "unterminated string");
    }
    uint8_t c = p->src[i];
    if (c == '"') {
      ++i;
      break;
    }
    if (c == '\\') {
      if (i + 1 >= p->len) {
        return fail(p, TERN_ERR_INVALID, open, "unterminated string");
      }
      uint8_t e = p->src[i + 1];
      if (e == '"' || e == '\\') {
        p->pool[p->poollen++] = e;
        i += 2;
        continue;
      }
      if (e == 'x' && i + 3 < p->len && hex_value(p->src[i + 2]) >= 0 &&
          hex_value(p->src[i + 3]) >= 0) {
        int v = hex_value(p->src[i + 2]) * 16 + hex_value(p->src[i + 3]);
        if (v == 0) {
          return fail(p, TERN_ERR_INVALID, i, "\\x00 in a string");
        }
        p->pool[p->poollen++] = (uint8_t)v;
        i += 4;
        continue;
      }
      return fail(p, TERN_ERR_INVALID, i,
                  "bad escape (use \\\", \\\\ or \\xHH)");
    }
    if (c < 0x20 || c == 0x7f) {
      return fail(p, TERN_ERR_INVALID, i,
                  "control character in a string (use \\xHH)");
    }
    if (c >= 0x80) {
      size_t k = utf8_seq(p->src + i, p->len - i);
      if (k == 0) {
        return fail(p, TERN_ERR_INVALID, i, "invalid UTF-8 in a string");
      }
      memcpy(p->pool + p->poollen, p->src + i, k);
      p->poollen += k;
      i += k;
      continue;
    }
    p->pool[p->poollen++] = c;
    ++i;
  }
  p->toklen = (uint16_t)(p->poollen - p->tokoff);
  p->tok = T_STRING;
  p->pos = i;
  return 0;
}

/* next reads the next token into p->tok; -1 on a lexical error. */
static int next(parser *p) {
  const uint8_t *s = p->src;
  while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t' ||
                             s[p->pos] == '\r' || s[p->pos] == '\n')) {
    ++p->pos;
  }
  p->tokpos = p->pos;
  if (p->pos == p->len) {
    p->tok = T_END;
    return 0;
  }
  uint8_t c = s[p->pos];
  uint8_t c1 = p->pos + 1 < p->len ? s[p->pos + 1] : 0;
  switch (c) {
  case '(':
    p->tok = T_LPAREN;
    break;
  case ')':
    p->tok = T_RPAREN;
    break;
  case ',':
    p->tok = T_COMMA;
    break;
  case '=':
    if (c1 == '=') {
      return fail(p, TERN_ERR_INVALID, p->pos, "'==' is not an operator; use '='");
    }
    p->tok = T_CMP;
    p->tokcmp = CMP_EQ;
    break;
  case '!':
    if (c1 != '=') {
      return fail(p, TERN_ERR_INVALID, p->pos, "expected '!='");
    }
    p->tok = T_CMP;
    p->tokcmp = CMP_NE;
    ++p->pos;
    break;
  case '<':
    if (c1 == '>') {
      return fail(p, TERN_ERR_INVALID, p->pos, "'<>' is not an operator; use '!='");
    }
    p->tok = T_CMP;
    p->tokcmp = c1 == '=' ? CMP_LE : CMP_LT;
    p->pos += c1 == '=';
    break;
  case '>':
    p->tok = T_CMP;
    p->tokcmp = c1 == '=' ? CMP_GE : CMP_GT;
    p->pos += c1 == '=';
    break;
  case '"':
    return lex_string(p);
  case '\'':
    return fail(p, TERN_ERR_INVALID, p->pos,
                "strings are quoted with '\"', not \"'\"");
  default:
    if (!is_word_byte(c)) {
      return fail(p, TERN_ERR_INVALID, p->pos, "unexpected character");
    }
    size_t end = p->pos;
    while (end < p->len && is_word_byte(s[end])) {
      ++end;
    }
    p->tok = keyword(s + p->pos, end - p->pos);
    if (p->tok == T_WORD) {
      p->tokoff = (uint16_t)p->poollen;
      p->toklen = (uint16_t)(end - p->pos);
      memcpy(p->pool + p->poollen, s + p->pos, end - p->pos);
      p->poollen += end - p->pos;
    }
    p->pos = end;
    return 0;
  }
  ++p->pos;
  return 0;
}

/* ---- parser ------------------------------------------------------------- */

static int new_node(parser *p, int kind) {
  if (p->nnodes == MAX_NODES) {
    return fail(p, TERN_ERR_TOO_LARGE, p->tokpos, "filter too complex");
  }
  node *n = &p->nodes[p->nnodes];
  memset(n, 0, sizeof(*n));
  n->kind = (uint8_t)kind;
  n->first = n->last = n->next = -1;
  return (int)p->nnodes++;
}

/* add_child appends |c| to |n|; an and/or child of a node of the same
   kind gives its children instead, so that equal filters get one tree. */
static void add_child(parser *p, int n, int c) {
  node *pn = &p->nodes[n], *cn = &p->nodes[c];
  int16_t first = (int16_t)c, last = (int16_t)c;
  uint16_t count = 1;
  if (cn->kind == pn->kind && (cn->kind == N_AND || cn->kind == N_OR)) {
    first = cn->first;
    last = cn->last;
    count = cn->nchild;
    cn->kind = N_GONE;
  }
  if (pn->last < 0) {
    pn->first = first;
  } else {
    p->nodes[pn->last].next = first;
  }
  pn->last = last;
  pn->nchild = (uint16_t)(pn->nchild + count);
}

static int parse_or(parser *p);

/* name takes the current token as an attribute name. */
static int take_name(parser *p, node *n) {
  if (p->tok != T_WORD && p->tok != T_STRING) {
    return fail(p, TERN_ERR_INVALID, p->tokpos,
                p->tok == T_END ? "expected an attribute name"
                : p->tok >= T_AND
                    ? "expected an attribute name (quote a keyword)"
                    : "expected an attribute name");
  }
  if (p->toklen == 0) {
    return fail(p, TERN_ERR_INVALID, p->tokpos, "empty attribute name");
  }
  if (p->toklen > FILTER_MAX_NAME) {
    return fail(p, TERN_ERR_TOO_LARGE, p->tokpos,
                "attribute name longer than 64 bytes");
  }
  n->name = p->tokoff;
  n->namelen = p->toklen;
  return next(p);
}

static int take_value(parser *p) {
  if (p->tok != T_WORD && p->tok != T_STRING) {
    return fail(p, TERN_ERR_INVALID, p->tokpos,
                p->tok >= T_AND ? "expected a value (quote a keyword)"
                                : "expected a value");
  }
  if (p->toklen > FILTER_MAX_VALUE) {
    return fail(p, TERN_ERR_TOO_LARGE, p->tokpos,
                "value longer than 256 bytes");
  }
  if (p->nvals == MAX_VALS) {
    return fail(p, TERN_ERR_TOO_LARGE, p->tokpos, "filter too complex");
  }
  fval *v = &p->vals[p->nvals++];
  v->off = p->tokoff;
  v->len = p->toklen;
  v->num = (uint8_t)(p->tok == T_WORD && is_number(p->pool + v->off, v->len));
  return next(p);
}

static int take_list(parser *p, node *n) {
  if (p->tok != T_LPAREN) {
    return fail(p, TERN_ERR_INVALID, p->tokpos, "expected '(' after 'in'");
  }
  if (next(p) < 0) {
    return -1;
  }
  n->val = (uint16_t)p->nvals;
  for (;;) {
    if (n->nval == FILTER_MAX_LIST) {
      return fail(p, TERN_ERR_TOO_LARGE, p->tokpos,
                  "more than 64 values in a list");
    }
    if (take_value(p) < 0) {
      return -1;
    }
    ++n->nval;
    if (p->tok == T_RPAREN) {
      return next(p);
    }
    if (p->tok != T_COMMA) {
      return fail(p, TERN_ERR_INVALID, p->tokpos, "expected ',' or ')'");
    }
    if (next(p) < 0) {
      return -1;
    }
  }
}

static int deeper(parser *p) {
  if (++p->depth > FILTER_MAX_DEPTH) {
    return fail(p, TERN_ERR_TOO_LARGE, p->tokpos,
                "nested deeper than 32 parentheses and 'not's");
  }
  return 0;
}

static int parse_predicate(parser *p) {
  size_t start = p->tokpos;
  if (p->tok != T_WORD && p->tok != T_STRING && p->tok != T_EXISTS) {
    return fail(p, TERN_ERR_INVALID, p->tokpos, "expected a condition");
  }
  if (++p->terms > FILTER_MAX_TERMS) {
    return fail(p, TERN_ERR_TOO_LARGE, start, "more than 64 terms");
  }
  int k = new_node(p, N_CMP);
  if (k < 0) {
    return -1;
  }
  node *n = &p->nodes[k];
  if (p->tok == T_EXISTS) {
    n->kind = N_EXISTS;
    return next(p) < 0 || take_name(p, n) < 0 ? -1 : k;
  }
  if (take_name(p, n) < 0) {
    return -1;
  }
  switch (p->tok) {
  case T_CMP:
    n->cmp = p->tokcmp;
    n->val = (uint16_t)p->nvals;
    n->nval = 1;
    return next(p) < 0 || take_value(p) < 0 ? -1 : k;
  case T_IN:
    n->kind = N_IN;
    return next(p) < 0 || take_list(p, n) < 0 ? -1 : k;
  case T_NOT:
    n->kind = N_NOTIN;
    if (next(p) < 0) {
      return -1;
    }
    if (p->tok != T_IN) {
      return fail(p, TERN_ERR_INVALID, p->tokpos, "expected 'in' after 'not'");
    }
    return next(p) < 0 || take_list(p, n) < 0 ? -1 : k;
  case T_EXISTS:
    return fail(p, TERN_ERR_INVALID, p->tokpos,
                "write 'exists name', not 'name exists'");
  default:
    return fail(p, TERN_ERR_INVALID, p->tokpos,
                "expected an operator (=, !=, <, <=, >, >=, in, not in)");
  }
}

static int parse_not(parser *p) {
  if (p->tok == T_NOT) {
    if (deeper(p) < 0) {
      return -1;
    }
    int k = new_node(p, N_NOT);
    if (k < 0 || next(p) < 0) {
      return -1;
    }
    int c = parse_not(p);
    if (c < 0) {
      return -1;
    }
    --p->depth;
    add_child(p, k, c);
    return k;
  }
  if (p->tok == T_LPAREN) {
    if (deeper(p) < 0 || next(p) < 0) {
      return -1;
    }
    int k = parse_or(p);
    if (k < 0) {
      return -1;
    }
    if (p->tok != T_RPAREN) {
      return fail(p, TERN_ERR_INVALID, p->tokpos,
                  p->tok == T_END ? "expected ')'"
                                  : "expected 'and', 'or' or ')'");
    }
    --p->depth;
    return next(p) < 0 ? -1 : k;
  }
  return parse_predicate(p);
}

/* parse_list parses operands of |sub| joined by |op| (T_AND, T_OR). */
static int parse_chain(parser *p, int op, int kind, int (*sub)(parser *)) {
  int a = sub(p);
  if (a < 0 || p->tok != op) {
    return a;
  }
  int k = new_node(p, kind);
  if (k < 0) {
    return -1;
  }
  add_child(p, k, a);
  while (p->tok == op) {
    if (next(p) < 0) {
      return -1;
    }
    int b = sub(p);
    if (b < 0) {
      return -1;
    }
    add_child(p, k, b);
  }
  return k;
}

static int parse_and(parser *p) {
  return parse_chain(p, T_AND, N_AND, parse_not);
}

static int parse_or(parser *p) {
  return parse_chain(p, T_OR, N_OR, parse_and);
}

/* ---- canonical text ----------------------------------------------------- */

static void put(parser *p, const void *s, size_t n) {
  if (p->textlen + n > TERN_MAX_FILTER) {
    p->textlen = TERN_MAX_FILTER + 1; /* over: reported by the caller */
    return;
  }
  memcpy(p->text + p->textlen, s, n);
  p->textlen += n;
}

static void puts_(parser *p, const char *s) { put(p, s, strlen(s)); }

/* put_atom writes a name or value: bare when it reads back as the same
   word, else quoted with escapes.  |numeric_ok|: a bare number reads back
   as the same thing (names, and values that were bare numbers); a quoted
   value that looks like a number stays quoted, a string. */
static void put_atom(parser *p, const uint8_t *s, size_t n, int numeric_ok) {
  int bare = n > 0 && keyword(s, n) == T_WORD &&
             (numeric_ok || !is_number(s, n));
  for (size_t i = 0; bare && i < n; ++i) {
    bare = is_word_byte(s[i]);
  }
  if (bare) {
    put(p, s, n);
    return;
  }
  put(p, "\"", 1);
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    size_t k;
    if (c == '"' || c == '\\') {
      uint8_t e[2] = {'\\', c};
      put(p, e, 2);
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      put(p, &c, 1);
      ++i;
    } else if (c >= 0x80 && (k = utf8_seq(s + i, n - i)) > 0) {
      put(p, s + i, k);
      i += k;
    } else {
      static const char hex[] = "0123456789abcdef";
      char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
      put(p, e, 4);
      ++i;
    }
  }
  put(p, "\"", 1);
}

static void put_value(parser *p, const fval *v) {
  put_atom(p, p->pool + v->off, v->len, v->num);
}

static void print(parser *p, int k) {
  const node *n = &p->nodes[k];
  switch (n->kind) {
  case N_CMP:
    put_atom(p, p->pool + n->name, n->namelen, 1);
    puts_(p, " ");
    puts_(p, cmp_names[n->cmp]);
    puts_(p, " ");
    put_value(p, &p->vals[n->val]);
    break;
  case N_IN:
  case N_NOTIN:
    put_atom(p, p->pool + n->name, n->namelen, 1);
    puts_(p, n->kind == N_IN ? " in (" : " not in (");
    for (uint16_t i = 0; i < n->nval; ++i) {
      if (i > 0) {
        puts_(p, ", ");
      }
      put_value(p, &p->vals[n->val + i]);
    }
    puts_(p, ")");
    break;
  case N_EXISTS:
    puts_(p, "exists ");
    put_atom(p, p->pool + n->name, n->namelen, 1);
    break;
  case N_NOT: {
    int c = n->first;
    int paren = p->nodes[c].kind == N_AND || p->nodes[c].kind == N_OR;
    puts_(p, paren ? "not (" : "not ");
    print(p, c);
    if (paren) {
      puts_(p, ")");
    }
    break;
  }
  default:
    for (int c = n->first; c >= 0; c = p->nodes[c].next) {
      int paren = n->kind == N_AND && p->nodes[c].kind == N_OR;
      if (c != n->first) {
        puts_(p, n->kind == N_AND ? " and " : " or ");
      }
      if (paren) {
        puts_(p, "(");
      }
      print(p, c);
      if (paren) {
        puts_(p, ")");
      }
    }
    break;
  }
}

/* ---- compile ------------------------------------------------------------ */

/* parse runs the parser and the printer over |text|; 0 or an error code
   with p->errpos and p->msg.  Returns the root node in *root. */
static int parse(parser *p, const char *text, size_t len, int *root) {
  memset(p, 0, offsetof(parser, pool));
  p->poollen = p->nnodes = p->nvals = p->textlen = 0;
  p->err = 0;
  p->src = (const uint8_t *)text;
  p->len = len;
  if (len > TERN_MAX_FILTER) {
    return fail(p, TERN_ERR_TOO_LARGE, TERN_MAX_FILTER,
                "filter longer than 1024 bytes"),
           p->err;
  }
  if (text == NULL && len > 0) {
    return fail(p, TERN_ERR_INVALID, 0, "no text"), p->err;
  }
  if (next(p) < 0) {
    return p->err;
  }
  if (p->tok == T_END) {
    return fail(p, TERN_ERR_INVALID, p->tokpos, "empty filter"), p->err;
  }
  int k = parse_or(p);
  if (k < 0) {
    return p->err;
  }
  if (p->tok != T_END) {
    return fail(p, TERN_ERR_INVALID, p->tokpos,
                p->tok == T_RPAREN ? "unbalanced ')'"
                                   : "expected 'and', 'or' or the end"),
           p->err;
  }
  print(p, k);
  if (p->textlen > TERN_MAX_FILTER) {
    return fail(p, TERN_ERR_TOO_LARGE, len,
                "canonical form longer than 1024 bytes"),
           p->err;
  }
  p->text[p->textlen] = '\0';
  *root = k;
  return 0;
}

static size_t count_ops(const parser *p) {
  size_t n = 0;
  for (size_t i = 0; i < p->nnodes; ++i) {
    const node *nd = &p->nodes[i];
    if (nd->kind == N_AND || nd->kind == N_OR) {
      n += (size_t)nd->nchild - 1;
    } else if (nd->kind != N_GONE) {
      ++n;
    }
  }
  return n;
}

/* emit writes the code of node |k| at ops[*at]; and/or children are
   followed by a jump to the end of the node, patched once it is known
   (the jumps are chained through |arg| until then). */
static void emit(const parser *p, int k, fop *ops, size_t *at) {
  const node *n = &p->nodes[k];
  fop *op;
  switch (n->kind) {
  case N_NOT:
    emit(p, n->first, ops, at);
    op = &ops[(*at)++];
    memset(op, 0, sizeof(*op));
    op->code = OP_NOT;
    return;
  case N_AND:
  case N_OR: {
    size_t chain = SIZE_MAX;
    for (int c = n->first; c >= 0; c = p->nodes[c].next) {
      emit(p, c, ops, at);
      if (p->nodes[c].next >= 0) {
        op = &ops[*at];
        memset(op, 0, sizeof(*op));
        op->code = n->kind == N_AND ? OP_JF : OP_JT;
        op->nval = (uint16_t)(chain == SIZE_MAX ? UINT16_MAX : chain);
        chain = (*at)++;
      }
    }
    while (chain != SIZE_MAX) {
      size_t prev = ops[chain].nval == UINT16_MAX ? SIZE_MAX : ops[chain].nval;
      ops[chain].arg = (uint16_t)*at;
      ops[chain].nval = 0;
      chain = prev;
    }
    return;
  }
  default:
    op = &ops[(*at)++];
    op->code = n->kind == N_CMP      ? OP_CMP
               : n->kind == N_IN     ? OP_IN
               : n->kind == N_NOTIN  ? OP_NOTIN
                                     : OP_EXISTS;
    op->cmp = n->cmp;
    op->name = n->name;
    op->namelen = n->namelen;
    op->arg = n->val;
    op->nval = n->nval;
    return;
  }
}

static void report(const parser *p, size_t *errpos, const char **msg) {
  if (errpos) {
    *errpos = p->errpos;
  }
  if (msg) {
    *msg = p->msg;
  }
}

int filter_check(const char *text, size_t len, size_t *errpos,
                 const char **msg) {
  parser p;
  int root;
  int rv = parse(&p, text, len, &root);
  if (rv != 0) {
    report(&p, errpos, msg);
  }
  return rv;
}

int filter_compile(const tern_mem *mem, const char *text, size_t len,
                   filter **pf, size_t *errpos, const char **msg) {
  parser p;
  int root = 0; /* set by parse() when it succeeds */
  if (pf == NULL) {
    return TERN_ERR_INVALID;
  }
  if (mem == NULL) {
    mem = mem_default();
  }
  int rv = parse(&p, text, len, &root);
  if (rv != 0) {
    report(&p, errpos, msg);
    return rv;
  }
  size_t nops = count_ops(&p);
  size_t size = sizeof(filter) + nops * sizeof(fop) + p.nvals * sizeof(fval) +
                p.poollen + p.textlen + 1;
  filter *f = mem_malloc(mem, size);
  if (f == NULL) {
    return TERN_ERR_NOMEM;
  }
  fop *ops = (fop *)(f + 1);
  fval *vals = (fval *)(ops + nops);
  uint8_t *pool = (uint8_t *)(vals + p.nvals);
  char *t = (char *)(pool + p.poollen);
  size_t at = 0;
  emit(&p, root, ops, &at);
  if (p.nvals) {
    memcpy(vals, p.vals, p.nvals * sizeof(fval));
  }
  memcpy(pool, p.pool, p.poollen);
  memcpy(t, p.text, p.textlen + 1);
  f->ops = ops;
  f->vals = vals;
  f->pool = pool;
  f->text = t;
  f->nops = nops;
  f->textlen = p.textlen;
  f->size = size;
  *pf = f;
  return 0;
}

void filter_free(const tern_mem *mem, filter *f) {
  if (f != NULL) {
    mem_free(mem ? mem : mem_default(), f);
  }
}

const char *filter_text(const filter *f, size_t *len) {
  if (len) {
    *len = f->textlen;
  }
  return f->text;
}

size_t filter_size(const filter *f) { return f->size; }

/* ---- match -------------------------------------------------------------- */

static const filter_attr *find(const filter_attr *attrs, size_t nattrs,
                               const uint8_t *name, size_t namelen) {
  for (size_t i = 0; i < nattrs; ++i) {
    if (attrs[i].keylen == namelen && attrs[i].key[0] == name[0] &&
        memcmp(attrs[i].key, name, namelen) == 0) {
      return &attrs[i];
    }
  }
  return NULL;
}

/* compare: the attribute value against a value of the filter, numerically
   when both are numbers, else byte by byte.  *anum caches whether the
   attribute value is a number: -1 not known yet. */
static int compare(const filter *f, const filter_attr *a, const fval *v,
                   int *anum) {
  const uint8_t *s = f->pool + v->off;
  if (v->num) {
    if (*anum < 0) {
      *anum = is_number(a->value, a->valuelen);
    }
    if (*anum) {
      return num_cmp(a->value, a->valuelen, s, v->len);
    }
  }
  return byte_cmp(a->value, a->valuelen, s, v->len);
}

static int test(int cmp, int c) {
  switch (cmp) {
  case CMP_EQ:
    return c == 0;
  case CMP_NE:
    return c != 0;
  case CMP_LT:
    return c < 0;
  case CMP_LE:
    return c <= 0;
  case CMP_GT:
    return c > 0;
  default:
    return c >= 0;
  }
}

int filter_match(const filter *f, const filter_attr *attrs, size_t nattrs) {
  int r = 0;
  for (size_t i = 0; i < f->nops;) {
    const fop *op = &f->ops[i];
    const filter_attr *a;
    switch (op->code) {
    case OP_NOT:
      r = !r;
      break;
    case OP_JF:
      if (!r) {
        i = op->arg;
        continue;
      }
      break;
    case OP_JT:
      if (r) {
        i = op->arg;
        continue;
      }
      break;
    default:
      a = find(attrs, nattrs, f->pool + op->name, op->namelen);
      if (a == NULL || op->code == OP_EXISTS) {
        r = a != NULL;
        break;
      }
      int anum = -1;
      if (op->code == OP_CMP) {
        r = test(op->cmp, compare(f, a, &f->vals[op->arg], &anum));
        break;
      }
      r = 0;
      for (uint16_t k = 0; k < op->nval && !r; ++k) {
        r = compare(f, a, &f->vals[op->arg + k], &anum) == 0;
      }
      r ^= op->code == OP_NOTIN;
      break;
    }
    ++i;
  }
  return r;
}

int tern_filter_check(const char *text, size_t len, size_t *errpos,
                      const char **msg) {
  return filter_check(text, len, errpos, msg);
}
