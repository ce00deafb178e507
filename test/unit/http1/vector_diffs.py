# vector_diffs.py — deliberate differences between tether and llhttp's request vectors, read by
# gen_vectors.py. Key: (file, exact vector name). Value: (tether's verdict, reason with the RFC).
# Rows marked "lenient" are strict=false in the vector set: they need an llhttp lenient flag,
# and tether has no lenient modes.
OBS_FOLD = "RFC 9112 §5.2: obs-fold is obsolete; a server MUST reject it or replace it with SP. tether rejects (400)"
BARE_LF = "RFC 9112 §2.2: bare CR/LF are framing ambiguities (smuggling); tether accepts CRLF only (400)"
CTL = "RFC 9110 §5.5: CTLs other than HTAB (and DEL) are not field-vchar; tether rejects them (400), no relaxed mode"
NOT_HTTP = "not HTTP/1.x: RTSP/ICE versions are a malformed HTTP-version (RFC 9112 §2.3) -> 400"
DIFF = {
    ("connection.md", "Resetting flags when keep-alive is off (1.0, lenient)"):
        ("reject", "lenient keep-alive: an HTTP/1.0 request without keep-alive ends the connection (RFC 9112 §9.3); bytes after it are not processed"),
    ("connection.md", "CRLF between requests, implicit `keep-alive`"):
        ("accept", "RFC 9112 §2.2: empty lines before a request-line SHOULD be ignored; tether ignores any number of CRLFs there (bounded by the head limit); llhttp only one"),
    ("connection.md", "Multiple tokens with folding"): ("reject", OBS_FOLD),
    ("connection.md", "Multiple tokens with folding, LWS, and CRLF"): ("reject", OBS_FOLD),
    ("connection.md", "Invalid whitespace token with `Connection` header field (lenient)"):
        ("reject", "RFC 9112 §5.1: no whitespace is allowed between field name and colon; MUST reject with 400"),
    ("content-length.md", "Invalid whitespace token with `Content-Length` header field (lenient)"):
        ("reject", "RFC 9112 §5.1: no whitespace is allowed between field name and colon; MUST reject with 400"),
    ("content-length.md", "No error on simultaneous `Content-Length` and `Transfer-Encoding: identity` (lenient)"):
        ("reject", "RFC 9112 §6.1/§6.3: TE and CL together in a request is a smuggling vector; tether answers 400"),
    ("content-length.md", "Content-Length reset when no body is received"):
        ("incomplete", "the llhttp test skips the body from a callback (meta skipBody); without that hook Content-Length: 123 means 123 body bytes (RFC 9112 §6.2)"),
    ("content-length.md", "Missing CRLF-CRLF before body (lenient)"): ("reject", BARE_LF),
    ("invalid.md", "HTTP protocol and ANNOUNCE method"):
        ("accept", "RFC 9110 §9.1: a method is any token; tether does not keep llhttp's per-protocol method lists (unknown methods are the application's business, 501 there)"),
    ("invalid.md", "Invalid method"):
        ("accept", "RFC 9110 §9.1: MKCOLA is a valid token; method semantics are the application's"),
    ("invalid.md", "Only LFs present (lenient)"): ("reject", BARE_LF),
    ("invalid.md", "Spaces before headers (lenient)"):
        ("reject", "RFC 9112 §2.2: whitespace between the start-line and the first field MUST be rejected or the line ignored; tether rejects (400)"),
    ("lenient-header-value-relaxed.md", "Control char in header value (relaxed)"): ("reject", CTL),
    ("lenient-headers.md", "Header value (lenient)"): ("reject", CTL),
    ("lenient-headers.md", "Second request header value (lenient)"): ("reject", CTL),
    ("lenient-headers.md", "Empty headers separated by CR (lenient)"): ("reject", BARE_LF),
    ("lenient-version.md", "Invalid HTTP version (lenient)"):
        ("reject", "RFC 9110 §15.6.6: a well-formed but unsupported major version is answered 505"),
    ("method.md", "M-SEARCH request"):
        ("reject", "RFC 9112 §3.2.4: the asterisk-form is only for OPTIONS (M-SEARCH is SSDP over HTTPU, not HTTP/1.1)"),
    ("method.md", "SOURCE request with ICE"): ("reject", NOT_HTTP),
    ("method.md", "OPTIONS request with RTSP"): ("reject", NOT_HTTP),
    ("method.md", "ANNOUNCE request with RTSP"): ("reject", NOT_HTTP),
    ("sample.md", "No HTTP version"):
        ("reject", "HTTP/0.9 simple requests are not supported: RFC 9112 §3 requires the HTTP-version (400)"),
    ("sample.md", "Line folding in header value with CRLF"): ("reject", OBS_FOLD),
    ("sample.md", "No LF after CR (lenient)"): ("reject", BARE_LF),
    ("sample.md", "X-SSL-Nonsense"): ("reject", OBS_FOLD),
    ("transfer-encoding.md", "Trailing headers"):
        ("reject", "RFC 9110 §6.5.1: Content-Type and Vary (content metadata / response control) are not allowed in trailers; tether rejects forbidden trailer fields (400) instead of dropping them"),
    ("transfer-encoding.md", "POST with `Transfer-Encoding` and `Content-Length` (lenient)"):
        ("reject", "RFC 9112 §6.1: TE with CL in a request -> 400"),
    ("transfer-encoding.md", "POST with `chunked` before other transfer-coding (lenient)"):
        ("reject", "RFC 9112 §6.3: chunked not final in a request -> MUST 400"),
    ("transfer-encoding.md", "POST with `chunked` and duplicate transfer-encoding (lenient)"):
        ("reject", "RFC 9112 §6.3: chunked not final in a request -> MUST 400"),
    ("transfer-encoding.md", "POST with `chunked` as last transfer-encoding"):
        ("reject", "RFC 9112 §6.1: tether implements no transfer-coding but chunked, so 'deflate, chunked' cannot be decoded -> 501"),
    ("transfer-encoding.md", "POST with `chunked` as last transfer-encoding (multiple headers)"):
        ("reject", "RFC 9112 §6.1: tether implements no transfer-coding but chunked, so 'deflate' then 'chunked' cannot be decoded -> 501"),
    ("transfer-encoding.md", "Chunk header not terminated by CRLF (lenient)"): ("reject", BARE_LF + " (RFC 9112 §7.1)"),
    ("transfer-encoding.md", "Chunk data not terminated by CRLF (lenient)"): ("reject", "RFC 9112 §7.1: chunk data is followed by CRLF; anything else is 400"),
    ("transfer-encoding.md", "Space after chunk header (lenient)"):
        ("reject", "whitespace after chunk-size: tether allows none (the BWS of RFC 9112 §7.1.1 is a desync vector, cf. CVE-2025-55315)"),
    ("uri.md", "Quotes in URI"):
        ("reject", "a backslash is not a URI character (RFC 3986 §2) and some servers read it as '/'; tether answers 400"),
    ("uri.md", "Fragment in URI"):
        ("reject", "RFC 9112 §3.2: a request-target has no fragment (clients strip it); tether answers 400"),
    ("uri.md", "`host:port` and basic auth"):
        ("reject", "RFC 9110 §4.2.4: userinfo in an http(s) URI MUST be treated as an error (400)"),
}
