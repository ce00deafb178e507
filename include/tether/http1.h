/* tether/http1.h — the HTTP/1.1 message engine: strict incremental zero-copy parsers for
 * request and response heads (RFC 9112), message framing (RFC 9112 §6), Connection and
 * Keep-Alive semantics, an in-place chunked decoder, a chunked encoder and head serializers.
 * Nothing here allocates; every pointer handed out points into a caller's buffer.
 *
 * Parse results: bytes of the head consumed (> 0, including the final CRLF), -2 incomplete
 * (feed more bytes), -1 error (the parser's `error` says why; tt_http1_error_status maps it to
 * the status to answer with). See docs/http1.md for every strictness choice. */
#ifndef TETHER_HTTP1_H
#define TETHER_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One header field: name and value point into the caller's buffer (not NUL-terminated).
 * The value has leading and trailing OWS removed. */
typedef struct tt_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} tt_header;

/* Why a parse or decode failed. Names are stable (tt_http1_error_name). */
typedef enum tt_http1_error {
    TT_HTTP1_OK = 0,
    TT_HTTP1_E_METHOD,              /* 400 method is not a token / empty */
    TT_HTTP1_E_TARGET,              /* 400 bad request-target or form not allowed for the method */
    TT_HTTP1_E_VERSION,             /* 400 malformed HTTP-version */
    TT_HTTP1_E_VERSION_UNSUPPORTED, /* 505 well-formed version other than 1.0 / 1.1 */
    TT_HTTP1_E_REQUEST_LINE,        /* 400 bad request-line (extra/missing spaces, ...) */
    TT_HTTP1_E_STATUS_LINE,         /* response: bad status-line (status, reason) */
    TT_HTTP1_E_EOL,                 /* 400 bare LF or bare CR (CRLF only) */
    TT_HTTP1_E_HEADER_NAME,         /* 400 empty name or non-tchar in a field name */
    TT_HTTP1_E_SPACE_BEFORE_COLON,  /* 400 whitespace between field name and colon */
    TT_HTTP1_E_OBS_FOLD,            /* 400 line folding (obs-fold) or whitespace before a name */
    TT_HTTP1_E_HEADER_VALUE,        /* 400 CTL (other than HTAB) or DEL in a field value */
    TT_HTTP1_E_URI_TOO_LONG,        /* 414 request-line longer than limits.max_request_line */
    TT_HTTP1_E_HEAD_TOO_LARGE,      /* 431 head longer than limits.max_head */
    TT_HTTP1_E_TOO_MANY_HEADERS,    /* 431 more fields than limits.max_headers or array capacity */
    TT_HTTP1_E_HOST_MISSING,        /* 400 HTTP/1.1 request without Host */
    TT_HTTP1_E_HOST_DUPLICATE,      /* 400 more than one Host field */
    TT_HTTP1_E_HOST_INVALID,        /* 400 Host not a valid uri-host[:port] (userinfo, spaces) */
    TT_HTTP1_E_CONTENT_LENGTH,      /* 400 Content-Length not 1*DIGIT, or overflow */
    TT_HTTP1_E_CONTENT_LENGTH_CONFLICT, /* 400 several differing Content-Length values */
    TT_HTTP1_E_TE_WITH_CL,        /* 400 request with both Transfer-Encoding and Content-Length */
    TT_HTTP1_E_TE_HTTP10,         /* 400 Transfer-Encoding in an HTTP/1.0 request */
    TT_HTTP1_E_TE_NOT_CHUNKED,    /* 400 request whose final transfer coding is not chunked */
    TT_HTTP1_E_TE_UNKNOWN,        /* 501 chunked final but an unknown coding before it */
    TT_HTTP1_E_BODY_TOO_LARGE,    /* 413 Content-Length above limits.max_body */
    TT_HTTP1_E_CHUNK_SIZE,        /* 400 chunk-size not hex / overflow / whitespace */
    TT_HTTP1_E_CHUNK_EXT,         /* 400 bad or too long chunk extension */
    TT_HTTP1_E_CHUNK_EOL,         /* 400 chunk data or line not followed by CRLF */
    TT_HTTP1_E_TRAILER,           /* 400 malformed trailer field or forbidden field in trailers */
    TT_HTTP1_E_TRAILER_TOO_LARGE, /* 431 trailer section over its limit */
    TT_HTTP1_E_UPGRADE,           /* 400 Connection: upgrade without a valid Upgrade field */
    TT_HTTP1_E_METHOD_TOO_LONG,   /* 501 method longer than TT_HTTP1_MAX_METHOD: none we know */
    TT_HTTP1_E__COUNT
} tt_http1_error;

/* How the message body is delimited (RFC 9112 §6.3). */
typedef enum tt_http1_body {
    TT_HTTP1_BODY_NONE = 0, /* no body (requests without CL/TE; HEAD/1xx/204/304 responses) */
    TT_HTTP1_BODY_LENGTH,   /* content_length bytes follow (may be 0) */
    TT_HTTP1_BODY_CHUNKED,  /* chunked transfer coding: use tt_http1_chunked_decode */
    TT_HTTP1_BODY_CLOSE     /* responses only: body runs until the connection closes */
} tt_http1_body;

/* Framing and connection flags (tt_http1_request.flags / tt_http1_response.flags). */
enum {
    TT_HTTP1_F_KEEP_ALIVE = 1u << 0,      /* connection may be reused after this message */
    TT_HTTP1_F_CONN_CLOSE = 1u << 1,      /* Connection: close token seen */
    TT_HTTP1_F_CONN_KEEPALIVE = 1u << 2,  /* Connection: keep-alive token seen */
    TT_HTTP1_F_CONN_UPGRADE = 1u << 3,    /* Connection: upgrade token seen */
    TT_HTTP1_F_UPGRADE = 1u << 4,         /* upgrade requested (Connection: upgrade + Upgrade) */
    TT_HTTP1_F_EXPECT_CONTINUE = 1u << 5, /* Expect: 100-continue (HTTP/1.1 only) */
    TT_HTTP1_F_EXPECT_OTHER = 1u << 6,    /* an Expect value other than 100-continue (417) */
    TT_HTTP1_F_HAS_TE = 1u << 7,          /* a Transfer-Encoding field was present */
    TT_HTTP1_F_HAS_CL = 1u << 8,          /* a Content-Length field was present */
    TT_HTTP1_F_KEEPALIVE_HDR = 1u << 9,   /* a Keep-Alive field was present */
};

/* Well-known methods (tt_http1_request.method_id); TT_HTTP1_M_OTHER for any other token. */
typedef enum tt_http1_method {
    TT_HTTP1_M_OTHER = 0,
    TT_HTTP1_M_GET,
    TT_HTTP1_M_HEAD,
    TT_HTTP1_M_POST,
    TT_HTTP1_M_PUT,
    TT_HTTP1_M_DELETE,
    TT_HTTP1_M_CONNECT,
    TT_HTTP1_M_OPTIONS,
    TT_HTTP1_M_TRACE,
    TT_HTTP1_M_PATCH
} tt_http1_method;

/* Request-target form (RFC 9112 §3.2). */
typedef enum tt_http1_target_form {
    TT_HTTP1_TARGET_ORIGIN = 0, /* /path?query */
    TT_HTTP1_TARGET_ABSOLUTE,   /* http://host/path */
    TT_HTTP1_TARGET_AUTHORITY,  /* host:port (CONNECT only) */
    TT_HTTP1_TARGET_ASTERISK    /* * (OPTIONS only) */
} tt_http1_target_form;

/* Limits; a zero field means the default. */
typedef struct tt_http1_limits {
    uint32_t max_request_line; /* request-line / status-line bytes incl. CRLF (8192) -> 414 */
    uint32_t max_head;         /* whole head bytes incl. final CRLF (65536) -> 431 */
    uint32_t max_headers;      /* field lines (100) -> 431 */
    uint64_t max_body;         /* Content-Length above this -> 413 (0: no limit) */
    uint32_t flags;            /* TT_HTTP1_LIMIT_* relaxations (0: strict) */
} tt_http1_limits;

/* tt_http1_limits.flags */
enum {
    /* accept an HTTP/1.1 request without Host (RFC 9112 §3.2 says 400; for tests/tools) */
    TT_HTTP1_LIMIT_ALLOW_NO_HOST = 1u << 0,
};

#define TT_HTTP1_DEFAULT_MAX_REQUEST_LINE 8192u
#define TT_HTTP1_MAX_METHOD               32u /* longer methods: 501 (the longest registered: 17) */
#define TT_HTTP1_DEFAULT_MAX_HEAD         65536u
#define TT_HTTP1_DEFAULT_MAX_HEADERS      100u

/* Incremental parser state. Holds offsets only, never pointers into the buffer, so between
 * calls the caller may move or grow its buffer: every call passes the message from its first
 * byte (buf[0] = first byte of the head) with the bytes given before unchanged and in the same
 * order; pointers already stored in the result are rebased to the new buffer. Bytes already
 * accepted are not rescanned. Initialise with tt_http1_parser_init (or zero it); after a
 * complete head it is ready for the next message (limits kept); after -1 it stays failed. */
typedef struct tt_http1_parser {
    tt_http1_limits limits; /* caller's limits (zero fields: defaults) */
    size_t pos;             /* bytes accepted so far */
    size_t tok;             /* start offset of the token being scanned */
    size_t tok2;            /* second offset (end of name / end of value) */
    uintptr_t base;       /* address of buf in the previous call (for rebasing; not used to read) */
    uint32_t state;       /* internal state */
    uint32_t nhdr;        /* fields accepted so far */
    uint32_t flags;       /* internal */
    tt_http1_error error; /* reason when a call returned -1 */
} tt_http1_parser;

/* A parsed request head. Set headers/max_headers before parsing; the rest is output. */
typedef struct tt_http1_request {
    const char *method; /* token */
    size_t method_len;
    const char *target; /* request-target as sent */
    size_t target_len;
    int minor_version; /* 0 or 1 (HTTP/1.x) */
    tt_http1_method method_id;
    tt_http1_target_form target_form;
    tt_header *headers; /* in: caller's array */
    size_t max_headers; /* in: capacity of headers */
    size_t num_headers; /* out: fields stored */
    const char *host;   /* Host value (NULL if none) */
    size_t host_len;
    tt_http1_body body;      /* NONE, LENGTH or CHUNKED */
    uint64_t content_length; /* when body == LENGTH */
    uint32_t flags;          /* TT_HTTP1_F_* */
} tt_http1_request;

/* A parsed response head. Set headers/max_headers before parsing; the rest is output. */
typedef struct tt_http1_response {
    int minor_version; /* 0 or 1 */
    int status;        /* 100..999 */
    const char *reason;
    size_t reason_len;
    tt_header *headers;
    size_t max_headers;
    size_t num_headers;
    tt_http1_body body; /* NONE, LENGTH, CHUNKED or CLOSE */
    uint64_t content_length;
    uint32_t flags; /* TT_HTTP1_F_* */
} tt_http1_response;

/* Reset p for a new message with the given limits (NULL: defaults). */
void tt_http1_parser_init(tt_http1_parser *p, const tt_http1_limits *limits);

/* Parse (or resume parsing) a request head in buf[0, len): framing, Host, Connection and
 * Expect are decided in the same pass. Returns the head length (> 0; the body, if any, starts
 * there), -2 if incomplete, -1 on error (p->error). r's pointers point into buf. */
int tt_http1_parse_request(tt_http1_parser *p, const char *buf, size_t len, tt_http1_request *r);

/* Parse (or resume) a response head in buf[0, len); request_method is the method of the
 * request it answers (HEAD => no body; CONNECT 2xx => tunnel, body NONE). Same results. */
int tt_http1_parse_response(tt_http1_parser *p, const char *buf, size_t len,
                            tt_http1_method request_method, tt_http1_response *r);

/* Stable lower-case name of an error ("ok", "bare_lf", ...); static storage. */
const char *tt_http1_error_name(tt_http1_error e);
/* The status code a server answers an error with (400, 413, 414, 431, 501, 505). */
int tt_http1_error_status(tt_http1_error e);

/* Map a method token to its id (TT_HTTP1_M_OTHER when unknown). */
tt_http1_method tt_http1_method_id(const char *m, size_t len);

/* Find the first field named name (case-insensitive) among h[0, n). NULL if none. */
const tt_header *tt_http1_find_header(const tt_header *h, size_t n, const char *name,
                                      size_t name_len);

/* ---- Keep-Alive: timeout=N, max=M ---- */

/* Parsed Keep-Alive parameters; -1 when absent. */
typedef struct tt_http1_keepalive {
    long timeout;
    long max;
} tt_http1_keepalive;

/* Parse a Keep-Alive field value (comma list of token[=value]; unknown params ignored).
 * Returns 0, or -1 if malformed (out then holds what was parsed before). */
int tt_http1_keepalive_parse(const char *v, size_t len, tt_http1_keepalive *out);
/* Write "timeout=N, max=M" (a negative value is omitted) into buf (NUL-terminated if room).
 * Returns the length it needs (not counting NUL); writes nothing useful if >= size. */
size_t tt_http1_keepalive_format(char *buf, size_t size, long timeout, long max);

/* ---- Chunked transfer coding ---- */

/* In-place chunked decoder state. Zero it (or tt_http1_chunked_init) per body. */
typedef struct tt_http1_chunked_decoder {
    uint64_t remaining;   /* data bytes left in the current chunk */
    uint32_t state;       /* internal */
    uint32_t ext_len;     /* chunk-extension bytes seen on the current line */
    uint32_t max_ext;     /* bound on one line's extensions (0: 1024) */
    uint32_t max_trailer; /* bound on the trailer section (0: 8192) -> 431 */
    tt_header *trailers;  /* in: array for trailer fields (may be NULL: trailers validated and
                             dropped) */
    size_t max_trailers;  /* in: capacity */
    size_t num_trailers;  /* out: trailer fields seen (stored when trailers != NULL) */
    int done;             /* set when the last chunk and trailer section were consumed */
    tt_http1_error error; /* reason when decode returned -1 */
    size_t tpos;          /* internal: trailer bytes accepted (relative to the section start) */
    uintptr_t tbase;      /* internal: previous trailer section address, for rebasing */
} tt_http1_chunked_decoder;

/* Reset d for a new body (keeps trailers/max_trailers/max_ext/max_trailer). */
void tt_http1_chunked_init(tt_http1_chunked_decoder *d);

/* Decode buf[0, len) in place: chunk data is moved to buf[0, *out_len) (framing removed).
 * Returns the input bytes consumed (>= 0), or -1 on error (d->error). Unconsumed bytes
 * buf[ret, len) (a partial line or trailer section) must be passed again, followed by more
 * input. When d->done, buf[ret, len) is the next message; trailers point into buf[*, ret)
 * (the trailer section is never moved). Forbidden trailer fields (framing, routing, auth:
 * Content-Length, Transfer-Encoding, Host, ...) are rejected (TT_HTTP1_E_TRAILER). */
long tt_http1_chunked_decode(tt_http1_chunked_decoder *d, char *buf, size_t len, size_t *out_len);

/* Longest chunk-size line tt_http1_chunk_header writes ("\r\n" + 16 hex + "\r\n"). */
#define TT_HTTP1_CHUNK_HEADER_MAX 20
/* Write the chunk-size line "HEX\r\n" for n data bytes (n > 0) into out; returns its length.
 * After the data, write "\r\n" (TT_HTTP1_CRLF). */
size_t tt_http1_chunk_header(char out[TT_HTTP1_CHUNK_HEADER_MAX], uint64_t n);
#define TT_HTTP1_CRLF "\r\n"
/* Write the last chunk "0\r\n", the trailer fields and the final "\r\n" into buf. Returns the
 * length needed; if > size nothing useful was written. */
size_t tt_http1_chunk_last(char *buf, size_t size, const tt_header *trailers, size_t n);

/* ---- Serializers ---- */

/* Standard reason phrase for status ("OK", "Not Found"; "" when unknown); static storage. */
const char *tt_http1_reason(int status);

/* IMF-fixdate length ("Sun, 06 Nov 1994 08:49:37 GMT"). */
#define TT_HTTP1_DATE_LEN 29
/* IMF-fixdate for now (0: time(NULL)), cached per second in thread-local storage: the
 * returned NUL-terminated string is valid until this thread's next call. */
const char *tt_http1_date(time_t now);

/* What a response head should say. The serializer picks framing from what is known:
 * content_length >= 0 -> Content-Length; -1 (unknown) -> chunked for an HTTP/1.1 peer, else
 * close-delimited (keep_alive forced off). 1xx/204 get no framing fields, 304 and HEAD keep a
 * known Content-Length. Outputs: body and keep_alive are updated to what was decided. */
typedef struct tt_http1_response_head {
    int status;
    const char *reason;       /* NULL: tt_http1_reason(status) */
    const tt_header *headers; /* extra fields (must not include Content-Length,
                                 Transfer-Encoding, Connection, Date) */
    size_t num_headers;
    int64_t content_length; /* body length, -1 unknown */
    int request_minor;      /* request's HTTP minor version (0/1) */
    int head_request;       /* answering HEAD: no body bytes follow */
    int keep_alive;         /* in: wish to keep the connection; out: decision */
    int date;               /* nonzero: add Date (tt_http1_date(0)) */
    tt_http1_body body;     /* out: framing of the body that follows */
} tt_http1_response_head;

/* Serialize a response head into buf[0, size). Returns the length needed; when it is
 * <= size the head was written completely. Updates h->body and h->keep_alive. Returns 0 (and
 * writes nothing) when a field name is not a token, or a field value or the reason phrase has
 * CR, LF, NUL or another CTL (tt_http1_token_valid / tt_http1_value_valid). */
size_t tt_http1_serialize_response(char *buf, size_t size, tt_http1_response_head *h);

/* Serialize a response head as an iovec array for writev: fixed strings and the caller's
 * header names/values are referenced, numbers and the status line go into scratch (at least
 * 128 bytes). Returns the iovec count used, or -1 if iov or scratch is too small or a field is
 * invalid (as tt_http1_serialize_response).
 * iovcnt needed: 4 per header + 8. Updates h->body and h->keep_alive. */
int tt_http1_response_iov(struct iovec *iov, int iovcnt, char *scratch, size_t scratch_size,
                          tt_http1_response_head *h);

/* What a request head should say (client side and bench: the one request-head writer). */
typedef struct tt_http1_request_head {
    const char *method; /* NUL-terminated token */
    const char *target; /* NUL-terminated request-target (visible ASCII, no space) */
    const char *host;   /* Host value (NULL: no Host field; not allowed for HTTP/1.1 servers) */
    const tt_header *headers; /* extra fields: no Host, Content-Length, Transfer-Encoding,
                                 Connection or Expect (those are written from the fields below) */
    size_t num_headers;
    int64_t content_length; /* -1: no body; -2: chunked body follows (HTTP/1.1 only) */
    int keep_alive;         /* 0: Connection: close (1.1); 1 with http10: Connection: keep-alive */
    int http10;             /* nonzero: HTTP/1.0 request line */
    int expect_continue;    /* nonzero: Expect: 100-continue (1.1, with a body) */
} tt_http1_request_head;

/* Serialize a request head into buf[0, size). Returns the length needed; when it is <= size
 * the head was written completely. Returns 0 (nothing usable written) when the method is not a
 * token, the target is empty or holds a space or control byte, or a field name is not a token
 * or a value holds CR, LF, NUL or another control byte: a request line or head is never split. */
size_t tt_http1_serialize_request(char *buf, size_t size, const tt_http1_request_head *h);

/* Nonzero when s[0, n) is a token (RFC 9110 §5.6.2): a valid method or field name. */
int tt_http1_token_valid(const char *s, size_t n);
/* Nonzero when s[0, n) may be written as a field value: visible bytes, obs-text, SP and HTAB
 * inside (never CR, LF, NUL or other CTLs, nor leading/trailing whitespace). */
int tt_http1_value_valid(const char *s, size_t n);
/* Split a "Name: value" line (no CRLF) into out (pointers into line; the value without
 * surrounding whitespace). 0, or -1 when there is no colon, the name is not a token or the value
 * is not valid. */
int tt_http1_header_line(const char *line, size_t len, tt_header *out);

#ifdef __cplusplus
}
#endif
#endif
