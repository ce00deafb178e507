/* insight.h — internals of `serve --status` shared within src/insight.c and its tests. */
#ifndef TT_INSIGHT_H
#define TT_INSIGHT_H

/* The /_tether/dashboard page: a NUL-terminated, self-contained HTML document (static). */
extern const char tt_insight_dashboard_html[];

/* Replace the allow list with comma-separated CIDRs ("10.0.0.0/8,::1"); NULL: loopback only
 * (127.0.0.0/8 and ::1). 0 or -EINVAL. */
int tt_insight_parse_allow(const char *list);

#endif
