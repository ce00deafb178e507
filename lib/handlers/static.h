/* static.h — internal to lib/handlers: the static handler's pure parts, exposed so that the
 * unit tests and the libFuzzer targets (fuzz/fuzz_static_path.c, fuzz/fuzz_range.c) can call
 * them. No state, no allocation. */
#ifndef TT_HANDLERS_STATIC_H
#define TT_HANDLERS_STATIC_H

#include <stddef.h>
#include <sys/types.h>

/* Percent-decode the request path p[0..n) into out (size bytes, NUL-terminated) as a relative
 * path: no leading '/', runs of '/' collapsed, no "." or ".." segment, no NUL or backslash.
 * Returns the length, or -1 (refused, or does not fit). */
int tt__static_clean_path(const char *p, size_t n, char *out, size_t size);

/* Parse a Range header value v[0..n) against a file of size bytes (RFC 9110 §14.1.2, §14.2):
 * 1 and [*from, *to] (inclusive, inside the file) for one satisfiable range; 0 to ignore it
 * (not "bytes=", invalid syntax, last < first, or several ranges: serve the whole file);
 * -1 when unsatisfiable (416). Positions of any length saturate: no overflow. */
int tt__static_parse_range(const char *v, size_t n, off_t size, off_t *from, off_t *to);

/* Write the Location of the directory rel (as tt__static_clean_path left it) into out: "/",
 * rel percent-encoded where a URI path needs it, then "/". Never starts with "//", so it
 * cannot be read as an authority. Returns the length, or -1 if it does not fit in size. */
int tt__static_dir_location(const char *rel, char *out, size_t size);

#endif
