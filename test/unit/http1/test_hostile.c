/* test_hostile.c — tether's own table of hostile and malformed messages: each request and
 * response with its expected verdict (200 = accepted complete message, 0 = still incomplete,
 * else the error status), checked whole, byte by byte and in random splits, every call's
 * input ending at a PROT_NONE guard page. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>

#include "harness.h"

typedef struct hcase {
    const char *raw;
    size_t len;
    int status;
    int response;     /* 1: response; 2: response to HEAD; 3: response to CONNECT */
    const char *body; /* expected decoded body when accepted (NULL: not checked) */
} hcase;

#define RQ(raw, st)                                                                                \
    {                                                                                              \
        raw, sizeof(raw) - 1, st, 0, NULL                                                          \
    }
#define RQB(raw, st, body)                                                                         \
    {                                                                                              \
        raw, sizeof(raw) - 1, st, 0, body                                                          \
    }
#define RS(raw, st)                                                                                \
    {                                                                                              \
        raw, sizeof(raw) - 1, st, 1, NULL                                                          \
    }
#define RSB(raw, st, body)                                                                         \
    {                                                                                              \
        raw, sizeof(raw) - 1, st, 1, body                                                          \
    }
#define RSM(raw, st, m)                                                                            \
    {                                                                                              \
        raw, sizeof(raw) - 1, st, m, NULL                                                          \
    }
#define P  "POST / HTTP/1.1\r\nHost: a\r\n"
#define G  "GET / HTTP/1.1\r\nHost: a\r\n"
#define TE P "Transfer-Encoding: chunked\r\n\r\n"

static hcase requests[] = {
    /* baseline */
    RQ(G "\r\n", 200),
    RQ("GET / HTTP/1.0\r\n\r\n", 200),
    RQ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\r\n", 0),
    RQ("GET / HTTP/1.1\r\nHost: a\r\n\r", 0),
    /* CL.TE / TE.CL */
    RQ(P "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Content-Length: 0\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    RQ(P "Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
    /* TE.TE obfuscations */
    RQ(P "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunk\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 501),
    RQ(P "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    RQ(P "Transfer-Encoding: gzip\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: identity\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
    RQ(P "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: ch unked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding:\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: ,\r\n\r\n", 400),
    RQ(P "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ("POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n0\r\n\r\n", 400),
    RQ("POST / HTTP/1.1\r\n\tTransfer-Encoding: chunked\r\nHost: a\r\n\r\n0\r\n\r\n", 400),
    RQ(P "X: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: gzip\r\n , chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "\vTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "\fTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding\v: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: \vchunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\v\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\f\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: \x00chunked\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\r\r\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer-Encoding: chunked\n\r\n0\r\n\r\n", 400),
    RQ(P "Transfer_Encoding: chunked\r\n\r\n", 200),
    RQ(P "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200),
    RQ(P "Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", 200),
    RQ(P "transfer-encoding: Chunked\r\n\r\n0\r\n\r\n", 200),
    RQ(P "Transfer-Encoding:\tchunked\t\r\n\r\n0\r\n\r\n", 200),
    RQ(P "Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 200),
    RQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n", 400),
    /* Content-Length */
    RQB(P "Content-Length: 5\r\n\r\nhello", 200, "hello"),
    RQ(P "Content-Length: +5\r\n\r\nhello", 400),
    RQ(P "Content-Length: -5\r\n\r\nhello", 400),
    RQ(P "Content-Length: 0x5\r\n\r\nhello", 400),
    RQ(P "Content-Length: 5 5\r\n\r\nhello", 400),
    RQ(P "Content-Length: 5\t5\r\n\r\nhello", 400),
    RQ(P "Content-Length:\r\n\r\nhello", 400),
    RQ(P "Content-Length: \r\n\r\nhello", 400),
    RQB(P "Content-Length: 5, 5\r\n\r\nhello", 200, "hello"),
    RQ(P "Content-Length: 5, 6\r\n\r\nhello!", 400),
    RQ(P "Content-Length: 5,\r\n\r\nhello", 400),
    RQ(P "Content-Length: ,5\r\n\r\nhello", 400),
    RQB(P "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 200, "hello"),
    RQ(P "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    RQ(P "Content-Length: 6\r\nContent-Length: 5\r\n\r\nhello!", 400),
    RQ(P "Content-Length: 18446744073709551616\r\n\r\n", 400),
    RQ(P "Content-Length: 18446744073709551615\r\n\r\n", 400),
    RQ(P "Content-Length: 9223372036854775808\r\n\r\n", 400),
    RQ(P "Content-Length: 9223372036854775807\r\n\r\n", 0),
    RQ(P "Content-Length: 99999999999999999999999999\r\n\r\n", 400),
    RQ(P "Content-Length: 5a\r\n\r\nhello", 400),
    RQ(P "Content-Length: 5.0\r\n\r\nhello", 400),
    RQ(P "Content-Length: 1e3\r\n\r\nhello", 400),
    RQ(P "Content-Length: \"5\"\r\n\r\nhello", 400),
    RQ(P "Content-Length: \xef\xbc\x95\r\n\r\nhello", 400),
    RQB(P "Content-Length:  5 \r\n\r\nhello", 200, "hello"),
    RQB(P "Content-Length:5\r\n\r\nhello", 200, "hello"),
    RQB(P "Content-Length: 0005\r\n\r\nhello", 200, "hello"),
    RQB(P "content-LENGTH: 5\r\n\r\nhello", 200, "hello"),
    RQ(P "Content-Length : 5\r\n\r\nhello", 400),
    RQ(P "Content-Length\t: 5\r\n\r\nhello", 400),
    RQ(P "Content-Length: 5\v\r\n\r\nhello", 400),
    RQ(P "Content-Length: 5\r\n\r\nhel", 0),
    RQ(P "Content-Length: 5\r\n 6\r\n\r\nhello", 400),
    RQ(P "Content-Length: 5\n\r\nhello", 400),
    /* chunked framing */
    RQB(TE "5\r\nhello\r\n0\r\n\r\n", 200, "hello"),
    RQB(TE "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 200, "hello world"),
    RQ(TE "-1\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "0x5\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "x5\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "+5\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE " 5\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5 \r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5\t\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "g\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "10000000000000001\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "fffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "ffffffffffffffff\r\nhello", 0),
    RQB(TE "0005\r\nhello\r\n000\r\n\r\n", 200, "hello"),
    RQB(TE "A\r\n0123456789\r\n0\r\n\r\n", 200, "0123456789"),
    RQB(TE "a\r\n0123456789\r\n0\r\n\r\n", 200, "0123456789"),
    RQ(TE "5;\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a\x00\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;\x00\r\nhello\r\n0\r\n\r\n", 400),
    RQB(TE "5;a=b\r\nhello\r\n0\r\n\r\n", 200, "hello"),
    RQB(TE "5;a\r\nhello\r\n0;b;c=d\r\n\r\n", 200, "hello"),
    RQB(TE "5;a=\"b c\"\r\nhello\r\n0\r\n\r\n", 200, "hello"),
    RQB(TE "5;a=\"b\\\"c\"\r\nhello\r\n0\r\n\r\n", 200, "hello"),
    RQ(TE "5;a=\"b\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5 ;a\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5; a\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a b\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a=\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a=b c\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;=b\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5\nhello\r\n0\r\n\r\n", 400),
    RQ(TE "5\rhello\r\n0\r\n\r\n", 400),
    RQ(TE "5\r\nhello\n0\r\n\r\n", 400),
    RQ(TE "5\r\nhello\r0\r\n\r\n", 400),
    RQ(TE "5\r\nhelloX\r\n0\r\n\r\n", 400),
    RQ(TE "5\r\nhell\r\n0\r\n\r\n", 400),
    RQ(TE "5\r\nhello\r\n0\r\n\n", 400),
    RQ(TE "5\r\nhello\r\n0\n\r\n", 400),
    RQ(TE "5\r\nhello\r\n0\r\n\r", 0),
    RQ(TE "5\r\nhello\r\n0\r\n", 0),
    RQ(TE "5\r\nhello\r\n", 0),
    RQ(TE "5\r\nhel", 0),
    RQ(TE "0\r\nContent-Length: 5\r\n\r\n", 400),
    RQ(TE "0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    RQ(TE "0\r\nHost: evil\r\n\r\n", 400),
    RQ(TE "0\r\nConnection: close\r\n\r\n", 400),
    RQ(TE "0\r\nAuthorization: x\r\n\r\n", 400),
    RQB(TE "0\r\nX-Checksum: 1\r\n\r\n", 200, ""),
    RQB(TE "3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", 200, "abc"),
    RQ(TE "0\r\nX-T : 1\r\n\r\n", 400),
    RQ(TE "0\r\n X-T: 1\r\n\r\n", 400),
    RQ(TE "0\r\nX-T: 1\r\n 2\r\n\r\n", 400),
    RQ(TE "0\r\nX-T: 1\n\r\n", 400),
    RQ(TE "0\r\nX-T: \x01\r\n\r\n", 400),
    RQ(TE "0\r\nX-T: a\x7f\r\n\r\n", 400),
    RQ(TE "0\r\n: 1\r\n\r\n", 400),
    RQ(TE "0\r\nX-T 1\r\n\r\n", 400),
    /* request line */
    RQ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    RQ("GET / \r\nHost: a\r\n\r\n", 400),
    RQ(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / Http/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 200), /* RFC 9110 §2.5: served as 1.1 */
    RQ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    RQ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    RQ("GET / HTTP/9.9\r\n\r\n", 505),
    RQ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/11\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1,1\r\nHost: a\r\n\r\n", 400),
    RQ("GET / XTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /\r\n\r\n", 400),
    RQ("GET\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400),
    RQ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 200),
    RQ("CONNECT [::1]:443 HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("CONNECT user@example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("CONNECT http://example.com:443/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET http://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("GET http://example.com HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("GET http://user@example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET ?x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GET/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("GÉT / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("get / HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    RQ("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    RQ("PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", 200),
    /* field lines */
    RQ(G "X Y: z\r\n\r\n", 400),
    RQ(G ": z\r\n\r\n", 400),
    RQ(G "X\x00Y: z\r\n\r\n", 400),
    RQ(G "X-Y z\r\n\r\n", 400),
    RQ(G "X\r\n\r\n", 400),
    RQ(G "X: a\x00b\r\n\r\n", 400),
    RQ(G "X: a\x7f b\r\n\r\n", 400),
    RQ(G "X: a\x01\r\n\r\n", 400),
    RQ(G "X: a\x1f\r\n\r\n", 400),
    RQ(G "X: a\x1b[31m\r\n\r\n", 400),
    RQ(G "X: \tb\t\r\n\r\n", 200),
    RQ(G "X: caf\xc3\xa9\r\n\r\n", 200),
    RQ(G "X:\r\n\r\n", 200),
    RQ(G "X: \r\n\r\n", 200),
    RQ(G "X: a\r\n b\r\n\r\n", 400),
    RQ(G "X: a\r\n\tb\r\n\r\n", 400),
    RQ(G "(X): y\r\n\r\n", 400),
    RQ(G "X@: y\r\n\r\n", 400),
    RQ(G "X{: y\r\n\r\n", 400),
    RQ(G "X\": y\r\n\r\n", 400),
    RQ(G "X/Y: z\r\n\r\n", 400),
    RQ(G "X\xff: y\r\n\r\n", 400),
    RQ(G "X=Y: z\r\n\r\n", 400),
    RQ(G "X;: z\r\n\r\n", 400),
    RQ(G "X,: z\r\n\r\n", 400),
    RQ(G "X[: z\r\n\r\n", 400),
    RQ(G "X\\: z\r\n\r\n", 400),
    RQ(G "X?: z\r\n\r\n", 400),
    RQ(G "X\t: z\r\n\r\n", 400),
    RQ(G "X-#!$%&'*+.^_`|~: z\r\n\r\n", 200),
    RQ(G "X::y\r\n\r\n", 200),
    /* Host */
    RQ("GET / HTTP/1.1\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
    RQ("GET / HTTP/1.0\r\n\r\n", 200),
    RQ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
    RQ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: u:p@a\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400),
    RQ("GET / HTTP/1.1\r\nHost: a:80\r\n\r\n", 200),
    RQ("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200),
    RQ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200),
    RQ("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400), /* RFC 9112 §3.2 */
    RQ("GET / HTTP/1.1\r\nhOST: a\r\n\r\n", 200),
    RQ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    /* connection semantics that must still parse */
    RQ(G "Connection: close\r\n\r\n", 200),
    RQ(G "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", 200),
    RQ(G "Expect: 100-continue\r\n\r\n", 200),
    RQ(G "Keep-Alive: timeout=5, max=100\r\n\r\n", 200),
};

static hcase responses[] = {
    RSB("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello"),
    RSB("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200,
        "hello"),
    RSB("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
        200, "hello"),
    RS("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    RS("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
    RSB("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 200, "hello"),
    RS("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", 400),
    RS("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551617\r\n\r\n", 400),
    RSB("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", 200, "xyz"),
    RSB("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxyz", 200, "xyz"),
    RS("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400),
    RSB("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 200, ""),
    RSB("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 200, ""),
    RSB("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 200, ""),
    RSM("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, 2),
    RSM("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, 2),
    RSM("HTTP/1.1 200 Connection established\r\n\r\n", 200, 3),
    RSB("HTTP/1.1 100 Continue\r\n\r\n", 200, ""),
    RSB("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 200, ""),
    RS("HTTP/1.1 101 Switching Protocols\r\n\r\n", 400),
    RS("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
       200),
    RS("HTTP/1.1 99 X\r\n\r\n", 400),
    RS("HTTP/1.1 099 X\r\n\r\n", 400),
    RS("HTTP/1.1 1000 X\r\n\r\n", 400),
    RS("HTTP/1.1 20 OK\r\n\r\n", 400),
    RS("HTTP/1.1 abc OK\r\n\r\n", 400),
    RS("HTTP/1.1 2OO OK\r\n\r\n", 400),
    RSB("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, ""),
    RSB("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 200, ""),
    RS("HTTP/1.1  200 OK\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", 400),
    RS("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", 400),
    RS("HTTP/2 200 OK\r\n\r\n", 400),
    RS("HTTP/1.2 200 OK\r\n\r\n", 200),
    RS("http/1.1 200 OK\r\n\r\n", 400),
    RS("HTTP/1.1 200 O\x01K\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nX : y\r\nContent-Length: 0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nX: a\x00\r\nContent-Length: 0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;\x00\r\nhello\r\n0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 9\r\n\r\n", 400),
    RSB("HTTP/1.1 200 OK\r\n\r\nbody", 200, "body"),
    RSB("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "hi"),
    RS("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 0),
    RSB("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b c\r\nContent-Length: 1\r\n\r\nx", 200, "x"),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400),
    RS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400),
    RSB("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n",
        200, "hello"),
};

static void check(const hcase *c)
{
    outcome a, b;
    int resp = c->response != 0;
    tt_http1_method m = c->response == 2   ? TT_HTTP1_M_HEAD
                        : c->response == 3 ? TT_HTTP1_M_CONNECT
                                           : TT_HTTP1_M_GET;
    h_run(c->raw, c->len, resp, m, MODE_WHOLE, 0, &a);
    cr_assert_eq(a.status, c->status, "%.*s: status %d (%s), expected %d", (int)c->len, c->raw,
                 a.status, tt_http1_error_name(a.err), c->status);
    if (c->body && a.status == 200) {
        cr_assert_eq(a.body_len, strlen(c->body), "body length %zu", a.body_len);
        cr_assert(!memcmp(a.body, c->body, a.body_len));
    }
    h_run(c->raw, c->len, resp, m, MODE_BYTES, 0, &b);
    const char *diff = h_compare(&a, &b);
    cr_assert_null(diff, "%.*s: byte-by-byte differs in %s", (int)c->len, c->raw, diff);
    for (uint64_t seed = 1; seed <= 24; seed++) {
        h_run(c->raw, c->len, resp, m, MODE_RANDOM, seed, &b);
        diff = h_compare(&a, &b);
        cr_assert_null(diff, "%.*s: split seed %d differs in %s", (int)c->len, c->raw, (int)seed,
                       diff);
    }
}

/* Parameters are indices: Criterion may re-exec the (PIE) binary for each test, so pointers
 * into the parent's address space must not cross. */
#define NREQ  (sizeof(requests) / sizeof(requests[0]))
#define NRESP (sizeof(responses) / sizeof(responses[0]))
static size_t req_idx[NREQ], resp_idx[NRESP];

ParameterizedTestParameters(hostile, requests)
{
    for (size_t i = 0; i < NREQ; i++)
        req_idx[i] = i;
    return cr_make_param_array(size_t, req_idx, NREQ);
}
ParameterizedTest(size_t *i, hostile, requests)
{
    check(&requests[*i]);
}

ParameterizedTestParameters(hostile, responses)
{
    for (size_t i = 0; i < NRESP; i++)
        resp_idx[i] = i;
    return cr_make_param_array(size_t, resp_idx, NRESP);
}
ParameterizedTest(size_t *i, hostile, responses)
{
    check(&responses[*i]);
}

Test(hostile, table_sizes)
{
    cr_assert_geq(sizeof(requests) / sizeof(requests[0]), 150);
    cr_assert_geq(sizeof(responses) / sizeof(responses[0]), 40);
}

/* Every CTL other than HTAB, and DEL, is rejected in a field value; every non-tchar byte in a
 * name is rejected; every byte >= 0x80 is accepted in a value (obs-text). */
Test(hostile, every_byte_in_value_and_name)
{
    for (int ch = 0; ch < 256; ch++) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: a");
        buf[n++] = (char)ch;
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "b\r\n\r\n");
        outcome o;
        h_run(buf, (size_t)n, 0, TT_HTTP1_M_GET, MODE_WHOLE, 0, &o);
        int ok = ch == '\t' || (ch >= 0x20 && ch != 0x7f);
        cr_assert_eq(o.status, ok ? 200 : 400, "value byte 0x%02x -> %d", ch, o.status);

        n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX");
        buf[n++] = (char)ch;
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "Y: b\r\n\r\n");
        h_run(buf, (size_t)n, 0, TT_HTTP1_M_GET, MODE_WHOLE, 0, &o);
        ok = (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') || ch == ':' ||
             (ch && strchr("!#$%&'*+-.^_`|~", ch));
        cr_assert_eq(o.status, ok ? 200 : 400, "name byte 0x%02x -> %d", ch, o.status);
    }
}
