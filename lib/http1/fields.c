/* fields.c — a head's field section: field lines up to the empty line (RFC 9112 §5). Each line
 * goes through the shared field-line grammar (field_line.h, at the CPU level chosen in scan.c);
 * this file stores the fields, applies their semantics (framing.c) and keeps a line that is cut
 * by the end of the input as offsets in the parser, to resume exactly there. */
#include "common/api.h"
#include "http1/chars.h"
#include "http1/head.h"
#include "tether/http1.h"

TT_API const tt_header *tt_http1_find_header(const tt_header *h, size_t n, const char *name,
                                             size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len != name_len) continue;
        size_t k = 0;
        while (k < name_len &&
               tt__http1_lower[(uint8_t)h[i].name[k]] == tt__http1_lower[(uint8_t)name[k]])
            k++;
        if (k == name_len) return &h[i];
    }
    return NULL;
}

/* Where the previous call stopped: the field line's phase and offsets. A name already scanned
 * sits in hdr[nhdr] (rebased by the driver when the buffer moved). */
static void load(const tt__head *h, tt__fline *fl, size_t pos)
{
    const tt_http1_parser *p = h->p;
    fl->phase = (tt__fl_phase)(p->state - S_FIELD);
    fl->pos = pos;
    fl->name = fl->name_end = fl->value = fl->value_end = 0;
    if (fl->phase == TT__FL_START || fl->phase == TT__FL_END_LF) return; /* the usual case */
    fl->name = fl->value = p->tok;
    fl->value_end = p->tok2;
    if (fl->phase >= TT__FL_OWS) {
        const tt_header *f = &h->hdr[p->nhdr];
        fl->name = (size_t)(f->name - h->buf);
        fl->name_end = fl->name + f->name_len;
    }
}

/* Keep a cut field line for the next call. */
static int save(tt__head *h, const tt__fline *fl)
{
    tt_http1_parser *p = h->p;
    if (fl->phase >= TT__FL_OWS) {
        tt_header *f = &h->hdr[p->nhdr];
        f->name = h->buf + fl->name;
        f->name_len = fl->name_end - fl->name;
    }
    p->tok = fl->phase == TT__FL_NAME ? fl->name : fl->value;
    p->tok2 = fl->value_end;
    return tt__head_more(h, fl->pos, S_FIELD + (uint32_t)fl->phase);
}

/* Accept field f (hdr[nhdr]) whose line ends at line_end: count it and apply its semantics. */
static int accept(tt__head *h, const tt_header *f, size_t line_end)
{
    h->p->nhdr++;
    if (tt__http1_semantic_name(f->name, f->name_len)) {
        tt_http1_error e = tt__http1_field_semantics(h, f);
        if (e) return tt__head_fail(h, line_end, e);
    }
    return TT__HEAD_DONE;
}

/* A run of plain, complete lines taken at once by the level's section scanner, accepted in
 * order (a field's error wins over anything after it, as line by line). fl->pos moves past it. */
static int run(tt__head *h, tt__fline *fl)
{
    tt_http1_parser *p = h->p;
    tt_header *out = &h->hdr[p->nhdr];
    size_t next, k = h->scan->section(h->buf, fl->pos, h->end, out, h->max_fields - p->nhdr, &next);
    for (size_t i = 0; i < k; i++) {
        if (tt__http1_semantic_name(out[i].name, out[i].name_len)) {
            tt_http1_error e = tt__http1_field_semantics(h, &out[i]);
            if (e) {
                p->nhdr += (uint32_t)i + 1;
                return tt__head_fail(h, i + 1 < k ? (size_t)(out[i + 1].name - h->buf) : next, e);
            }
        }
    }
    p->nhdr += (uint32_t)k;
    fl->pos = next;
    return TT__HEAD_DONE;
}

ptrdiff_t tt__http1_fields(tt__head *h, size_t pos)
{
    tt_http1_parser *p = h->p;
    const char *buf = h->buf;
    int (*line)(const char *, size_t, size_t, tt__fline *) = h->scan->field_line;
    tt__fline fl;
    load(h, &fl, pos);
    for (;;) {
        if (fl.phase == TT__FL_START && p->nhdr < h->max_fields) {
            if (run(h, &fl) != TT__HEAD_DONE) return TT__HEAD_FAIL;
            if (fl.pos + 1 < h->end && buf[fl.pos] == '\r' && buf[fl.pos + 1] == '\n') {
                p->pos = fl.pos + 2; /* the empty line: the usual end, without a line call */
                return (ptrdiff_t)fl.pos + 2;
            }
        }
        size_t room = h->max_fields > p->nhdr ? h->max_fields - p->nhdr : 0;
        int rc = line(buf, h->end, room, &fl);
        if (rc == TT__FL_FIELD) {
            tt_header *f = &h->hdr[p->nhdr];
            f->name = buf + fl.name;
            f->name_len = fl.name_end - fl.name;
            f->value = buf + fl.value;
            f->value_len = fl.value_end - fl.value;
            if (accept(h, f, fl.pos) != TT__HEAD_DONE) return TT__HEAD_FAIL;
            continue;
        }
        if (rc == TT__FL_END) {
            p->pos = fl.pos;
            return (ptrdiff_t)fl.pos;
        }
        if (rc == TT__FL_MORE) return save(h, &fl);
        return tt__head_fail(h, fl.pos, (tt_http1_error)rc);
    }
}
