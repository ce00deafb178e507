/* request.c — the request accessors (tt_req_*): views into the exchange's read buffer, the
 * connection's information, and the names of states and close reasons. Read-only. */
#include <errno.h>
#include <string.h>

#include "common/api.h"
#include "server/server_int.h"
#include "tether/socket.h"

static const char *const state_names[] = {"reading_head", "reading_body", "handling", "writing",
                                          "idle",         "lingering",    "closed"};
static const char *const reason_names[] = {
    "peer_fin",     "peer_rst",       "conn_close",   "max_requests",      "max_age",
    "idle_timeout", "header_timeout", "body_timeout", "send_timeout",      "bad_request",
    "shutdown",     "pressure",       "peer_dead",    "handshake_timeout", "tls_failed"};
_Static_assert(sizeof reason_names / sizeof reason_names[0] == TT_CLOSE_NREASONS,
               "a name for every close reason");

TT_API const char *tt_conn_state_name(int state)
{
    return state >= 0 && state < TT_CONN_NSTATES ? state_names[state] : "?";
}

TT_API const char *tt_close_reason_name(int reason)
{
    return reason >= 0 && reason < TT_CLOSE_NREASONS ? reason_names[reason] : "?";
}

TT_API const char *tt_req_method(const tt_req *req, size_t *len)
{
    if (len) *len = req->req.method_len;
    return req->req.method;
}

TT_API const char *tt_req_path(const tt_req *req, size_t *len)
{
    if (len) *len = req->path_len;
    return req->path;
}

TT_API const char *tt_req_query(const tt_req *req, size_t *len)
{
    if (len) *len = req->query_len;
    return req->query;
}

TT_API const char *tt_req_target(const tt_req *req, size_t *len)
{
    if (len) *len = req->req.target_len;
    return req->req.target;
}

TT_API int tt_req_minor(const tt_req *req)
{
    return req->req.minor_version;
}

TT_API tt_http1_method tt_req_method_id(const tt_req *req)
{
    return req->req.method_id;
}

TT_API const char *tt_req_header(const tt_req *req, const char *name, size_t *len)
{
    const tt_header *h = tt_http1_find_header(req->hdrs, req->req.num_headers, name, strlen(name));
    if (!h) return NULL;
    if (len) *len = h->value_len;
    return h->value;
}

TT_API int tt_req_header_count(const tt_req *req)
{
    return (int)req->req.num_headers;
}

TT_API int tt_req_header_at(const tt_req *req, int i, const char **name, size_t *nlen,
                            const char **value, size_t *vlen)
{
    if (i < 0 || (size_t)i >= req->req.num_headers) return -ERANGE;
    *name = req->hdrs[i].name;
    *nlen = req->hdrs[i].name_len;
    *value = req->hdrs[i].value;
    *vlen = req->hdrs[i].value_len;
    return 0;
}

TT_API const char *tt_req_body(const tt_req *req, size_t *len)
{
    if (len) *len = req->body_len;
    return req->body_len ? req->rbuf.data + req->head_len : NULL;
}

TT_API const char *tt_req_trailer(const tt_req *req, const char *name, size_t *len)
{
    size_t n = req->dec.num_trailers < TT__MAX_TRAILERS ? req->dec.num_trailers : TT__MAX_TRAILERS;
    const tt_header *h = tt_http1_find_header(req->trailers, n, name, strlen(name));
    if (!h) return NULL;
    if (len) *len = h->value_len;
    return h->value;
}

TT_API int tt_req_trailer_count(const tt_req *req)
{
    return req->req.body == TT_HTTP1_BODY_CHUNKED && req->dec.done ? (int)req->dec.num_trailers : 0;
}

TT_API int tt_req_trailer_at(const tt_req *req, int i, const char **name, size_t *nlen,
                             const char **value, size_t *vlen)
{
    if (i < 0 || i >= tt_req_trailer_count(req)) return -ERANGE;
    *name = req->trailers[i].name;
    *nlen = req->trailers[i].name_len;
    *value = req->trailers[i].value;
    *vlen = req->trailers[i].value_len;
    return 0;
}

TT_API int tt_req_conn_info(const tt_req *req, tt_conn_info *out)
{
    const tt__conn *c = req->conn;
    const tt_server_config *cfg = &c->w->srv->cfg;
    memset(out, 0, sizeof *out);
    out->id = tt__conn_id(c);
    out->worker = c->w->index;
    if (c->s.io.fd >= 0) {
        tt_sock_peer(c->s.io.fd, &out->peer);
        tt_sock_local(c->s.io.fd, &out->local);
    }
    out->requests = c->nreq;
    out->requests_left = c->maxreq ? (int32_t)(c->maxreq - c->nreq) : -1;
    out->age_ms = tt__worker_now(c->w) - c->born;
    out->idle_timeout_ms = req->res.keep_alive ? cfg->keepalive_timeout_ms : -1;
    out->state = c->state;
    return 0;
}

TT_API uint64_t tt_req_conn_id(const tt_req *req)
{
    return tt__conn_id(req->conn);
}

TT_API tt_loop *tt_req_loop(const tt_req *req)
{
    return req->conn->w->loop;
}
TT_API tt_server *tt_req_server(const tt_req *req)
{
    return req->conn->w->srv;
}
TT_API int(tt_req_aborted)(const tt_req *req)
{
    return req->conn->state == TT_CONN_CLOSED;
}
