/* internal.h — internal helpers shared by the HTTP/1.1 engine's files. */
#ifndef TT_HTTP1_INTERNAL_H
#define TT_HTTP1_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tether/http1.h"

/* Content-Length: 1*DIGIT or a list of identical ones. 0, -1 malformed, -2 differing. */
int tt__http1_parse_content_length(const char *v, size_t n, uint64_t *out);
/* uri-host [":" port] without userinfo; need_port: authority-form for CONNECT. 1 if valid. */
int tt__http1_valid_host(const char *v, size_t n, int need_port);
/* Nonzero when a field name may not appear in a trailer section (RFC 9110 §6.5.1: framing,
 * routing, connection control, request modifiers, authentication, content metadata): the
 * decoder refuses it and the client never sends it. */
int tt__http1_trailer_forbidden(const char *n, size_t len);
/* "Name: value" split at the first colon, OWS around the value removed, no byte checked (the
 * serializers check every field they write): 0, or -1 without a colon. tt_http1_header_line is
 * this plus the checks. out points into line. */
int tt__http1_header_split(const char *line, size_t len, tt_header *out);
/* 1 if every field of f[0, n) can be written as it is: a token name and a valid value (the
 * serializers' check). */
int tt__http1_fields_valid(const tt_header *f, size_t n);

#endif
