/* The multipart parser against itself: the same body fed whole, in two
 * pieces cut where the input says, and byte by byte (short inputs) must give
 * the same verdict and the same parts, and every part's range must lie
 * inside the body, in order, without overlap. Boundary "fzB". */
#include "adx_parts.h"
#include "fuzz_common.h"

typedef struct outcome {
    int rc;
    parts_set s;
} outcome;

static void run(const uint8_t *d, size_t n, const size_t *cuts, size_t ncuts, outcome *o)
{
    adx_err e;
    adx_err_init(&e);
    memset(o, 0, sizeof *o);
    parts_limits pl;
    parts_limits_default(&pl);
    pl.max_parts = 64;
    pl.max_header_bytes = 512;
    parts_mp *p = parts_mp_new("fzB", &pl, &e);
    if (!p) abort();
    size_t at = 0;
    o->rc = 0;
    for (size_t i = 0; i <= ncuts && !o->rc; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        if (end < at) end = at;
        o->rc = parts_mp_feed(p, d + at, end - at, &e);
        at = end;
    }
    if (!o->rc) o->rc = parts_mp_finish(p, &o->s, -1, &e);
    parts_mp_free(p);
    if (o->rc && !adx_err_failed(&e)) abort(); /* a failure always says why */
}

static void same(const outcome *a, const outcome *b)
{
    if (a->rc != b->rc || a->s.n != b->s.n) abort();
    for (size_t i = 0; i < a->s.n; i++) {
        const parts_part *x = &a->s.v[i], *y = &b->s.v[i];
        if (strcmp(x->name, y->name) || x->off != y->off || x->len != y->len) abort();
        if ((x->content_type == NULL) != (y->content_type == NULL)) abort();
        if (x->content_type && strcmp(x->content_type, y->content_type)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole, two;
    run(data, size, NULL, 0, &whole);
    uint64_t prev_end = 0;
    for (size_t i = 0; i < whole.s.n; i++) {
        const parts_part *q = &whole.s.v[i];
        if (q->off < prev_end || q->off + q->len > size || !q->name[0]) abort();
        prev_end = q->off + q->len;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(whole.s.v[k].name, q->name)) abort(); /* duplicates refused */
    }
    size_t cut = size ? (size_t)data[0] * 257 % (size + 1) : 0;
    run(data, size, &cut, 1, &two);
    same(&whole, &two);
    parts_set_free(&two.s);
    if (size <= 4096) {
        size_t *cuts = malloc((size ? size : 1) * sizeof *cuts);
        for (size_t i = 0; i < size; i++)
            cuts[i] = i;
        outcome each;
        run(data, size, cuts, size, &each);
        same(&whole, &each);
        parts_set_free(&each.s);
        free(cuts);
    }
    parts_set_free(&whole.s);
    return 0;
}
