/* adx_glob: Python fnmatch.fnmatchcase, mirrored from fnmatch.translate
 * (CPython 3.11) so that include patterns mean exactly what they mean in the
 * reference implementation, including its bracket quirks.
 *
 * Every element of a pattern but "*" matches exactly one code point, so the
 * segments between runs of stars have fixed lengths, and if the middle ones
 * can be placed at all, each can be placed at its leftmost occurrence after
 * the one before: a later placement leaves less room and gains nothing.
 * So the first and last segments are compared where they must be, each
 * middle one is searched for once (KMP when it is all literal, Shift-And
 * over code points otherwise) and the searches never look at a position
 * twice, where the greedy backtracking matcher this replaces rescanned the
 * name once per failed placement (quadratic on "*aaaa…c*" over "aaaa…"). */
#include "adx_glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adx_common.h"
#include "adx_utf8.h"

/* Steps stand for about a nanosecond each (2-core VM, -O2): a call's fixed
 * cost is what keeps many short matches honest ("*z1*" on "k12345": 54
 * steps, ~60 ns), while long names and patterns measured 0.3-1.8 ns a
 * step (Shift-And words are the cheap end, decoding the dear one). */
enum { CALL_STEPS = 24 };
/* A pattern tried on a name in a glob_set, before any glob match: the walk
 * of a chain of patterns and their literal checks measured ~5 ns a try
 * (4096 patterns sharing the prefix "k" on 100,000 keys). */
enum { TRY_STEPS = 4 };

typedef struct meter {
    uint64_t *steps, max;
} meter;

/* Add n steps; true once the total has passed the bound. */
static bool charge(meter *m, uint64_t n)
{
    *m->steps += n;
    return *m->steps > m->max;
}

/* Scratch laid out twice: once without a buffer to learn its size, then in
 * a stack buffer or one malloc (a match of short text must not pay for
 * allocations, which cost more than it does). */
typedef struct arena {
    char *buf;
    size_t used;
} arena;

static void *take(arena *a, size_t n)
{
    size_t at = (a->used + 15) & ~(size_t)15;
    a->used = at + n;
    return a->buf ? a->buf + at : NULL;
}

typedef struct range {
    uint32_t lo, hi;
} range;

/* A bracket expression as sorted, disjoint ranges r[at, at + n) of the
 * prog's pool: a code point is in when one holds it, inverted by neg. */
typedef struct cls {
    uint32_t at, n;
    uint32_t cost; /* steps of one membership test (a binary search) */
    uint32_t id;   /* the first class with the same content: one mask serves both */
    bool neg;
} cls;

enum { E_LIT, E_ANY, E_CLS };
typedef struct elem {
    uint32_t kind, v; /* E_LIT: the code point; E_CLS: the class */
} elem;

/* A pattern compiled for one name: elements between runs of stars. */
typedef struct prog {
    uint32_t *p, *s; /* the pattern's and the name's code points */
    size_t pn, sn;
    size_t *close; /* close[j]: the first "]" at or after j (pn: none) */
    elem *e;
    size_t ne;
    size_t *cut; /* segment k is e[cut[k], cut[k + 1]); a run of stars lies between two */
    size_t nseg;
    cls *c;
    size_t nc;
    range *r;
    size_t nr;
    uint32_t *hslot; /* classes by content (index + 1; 0 free) */
    size_t hcap;
    /* a bracket with "-" worked through as translate() does */
    size_t *cs, *ce, *live;
    unsigned char *dead, *gone;
    uint32_t *w;
} prog;

static void carve(prog *g, arena *a, size_t pl, size_t nl)
{
    /* a bracket takes at least three code points, a chunk of one at least two */
    size_t nch = pl / 2 + 2;
    g->hcap = 8;
    while (g->hcap < 2 * nch)
        g->hcap *= 2;
    g->p = take(a, (pl + 1) * sizeof *g->p);
    g->s = take(a, (nl + 1) * sizeof *g->s);
    g->close = take(a, (pl + 1) * sizeof *g->close);
    g->e = take(a, (pl + 1) * sizeof *g->e);
    g->cut = take(a, (pl + 2) * sizeof *g->cut);
    g->c = take(a, nch * sizeof *g->c);
    /* per bracket of content length L at most 1.5 L + 2 ranges */
    g->r = take(a, (2 * pl + 2 * nch) * sizeof *g->r);
    g->hslot = take(a, g->hcap * sizeof *g->hslot);
    g->cs = take(a, nch * sizeof *g->cs);
    g->ce = take(a, nch * sizeof *g->ce);
    g->live = take(a, nch * sizeof *g->live);
    g->dead = take(a, pl + 2);
    g->gone = take(a, nch);
    g->w = take(a, (pl + 2) * sizeof *g->w);
}

/* Code points of s (len bytes); an invalid byte counts as its own. */
static size_t decode_all(const char *s, size_t len, uint32_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0, i = 0;
    while (i < len)
        i += utf8_next_lenient(p + i, len - i, &out[n++]);
    return n;
}

/* Span [s, e) of the working copy with deleted positions skipped. */
static size_t first_live(const unsigned char *dead, size_t s, size_t e)
{
    while (s < e && dead[s])
        s++;
    return s; /* == e when empty */
}

static size_t last_live(const unsigned char *dead, size_t s, size_t e)
{
    while (e > s && dead[e - 1])
        e--;
    return e > s ? e - 1 : SIZE_MAX;
}

enum { BR_RANGES, BR_ALWAYS, BR_NEVER };

/* A bracket whose content p[start, end) has a "-", following translate():
 * split into chunks at "-" (a "-" right after a separator starts the next
 * chunk), a trailing "-" is literal, empty ranges (last(prev) > first(next))
 * are removed from the end by merging neighbours, and the joined text is
 * then a regex class: "!" first means negation — even when merging moved it
 * there, as in "[z-b!-]" — an empty class never matches, "!" alone matches
 * anything, and between chunks last(prev)..first(next) is a range. A pattern
 * translate() itself raises on (IndexError on a chunk emptied by a merge)
 * never matches. The merges mark chunks gone instead of closing the gap, so
 * a bracket costs linear time whatever its number of chunks. */
static int dash_ranges(prog *g, size_t start, size_t end, range *r, size_t *nout, bool *negout)
{
    const uint32_t *p = g->p;
    size_t *cs = g->cs, *ce = g->ce, *live = g->live;
    unsigned char *dead = g->dead, *gone = g->gone;
    uint32_t *w = g->w;
    size_t nch = 0, wl = 0;
    size_t i = start, k = start + (p[start] == '!' ? 2 : 1);
    for (;;) {
        size_t f = k;
        while (f < end && p[f] != '-')
            f++;
        if (f >= end) break;
        cs[nch] = wl;
        for (size_t q = i; q < f; q++)
            w[wl++] = p[q];
        ce[nch++] = wl;
        i = f + 1;
        k = f + 3;
    }
    if (i < end) {
        cs[nch] = wl;
        for (size_t q = i; q < end; q++)
            w[wl++] = p[q];
        ce[nch++] = wl;
    } else {
        w[wl++] = '-'; /* chunks[-1] += '-': the last chunk ends at wl */
        ce[nch - 1] = wl;
    }
    memset(dead, 0, wl);
    memset(gone, 0, nch);
    /* merging chunk t into t - 1 leaves the chunks before t where they are,
     * and the next comparison is of t - 2 with the merged one */
    for (size_t t = nch - 1; t >= 1; t--) {
        size_t l = last_live(dead, cs[t - 1], ce[t - 1]);
        size_t f = first_live(dead, cs[t], ce[t]);
        if (l == SIZE_MAX || f == ce[t]) return BR_NEVER; /* IndexError in translate() */
        if (w[l] > w[f]) {
            dead[l] = dead[f] = 1;
            ce[t - 1] = ce[t];
            gone[t] = 1;
        }
    }
    size_t nl = 0;
    for (size_t t = 0; t < nch; t++)
        if (!gone[t]) live[nl++] = t;
    size_t f0 = first_live(dead, cs[0], ce[0]);
    if (nl == 1 && f0 == ce[0]) return BR_NEVER; /* an empty class */
    bool neg = false;
    if (f0 < ce[0] && w[f0] == '!') {
        if (nl == 1 && first_live(dead, f0 + 1, ce[0]) == ce[0]) return BR_ALWAYS; /* "!" alone */
        neg = true;
        dead[f0] = 1;
    }
    size_t n = 0;
    for (size_t x = 0; x < nl; x++) {
        size_t t = live[x];
        size_t fl = first_live(dead, cs[t], ce[t]);
        for (size_t q = fl; q < ce[t]; q++)
            if (!dead[q]) r[n++] = (range){w[q], w[q]};
        if (x + 1 == nl) break;
        if (fl == ce[t]) {
            /* An empty first chunk leaves the separator first in the class,
             * where a regex reads "-" as a literal, not a range. */
            r[n++] = (range){'-', '-'};
            continue;
        }
        size_t u = live[x + 1];
        size_t lo = last_live(dead, cs[t], ce[t]);
        size_t hi = first_live(dead, cs[u], ce[u]);
        if (hi < ce[u] && w[lo] <= w[hi]) r[n++] = (range){w[lo], w[hi]};
    }
    *nout = n;
    *negout = neg;
    return BR_RANGES;
}

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Sort and merge overlapping or touching ranges; the new count. */
static size_t normalize(range *r, size_t n)
{
    if (n < 2) return n;
    qsort(r, n, sizeof *r, range_cmp);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if ((uint64_t)r[i].lo <= (uint64_t)r[k].hi + 1) {
            if (r[i].hi > r[k].hi) r[k].hi = r[i].hi;
        } else {
            r[++k] = r[i];
        }
    }
    return k + 1;
}

static uint32_t bit_length(size_t n)
{
    uint32_t b = 0;
    while (n) {
        b++;
        n >>= 1;
    }
    return b;
}

/* The bracket with content p[start, end) as one element; false when it can
 * match nothing, and so neither can the pattern. A class of one code point
 * is a literal, so "[a]" costs what "a" costs. */
static bool bracket(prog *g, size_t start, size_t end, elem *out, uint64_t *cost)
{
    const uint32_t *p = g->p;
    range *r = g->r + g->nr;
    size_t n = 0;
    bool neg = false, dash = false;
    for (size_t i = start; i < end; i++)
        if (p[i] == '-') dash = true;
    if (dash) {
        int how = dash_ranges(g, start, end, r, &n, &neg);
        if (how == BR_NEVER) return false;
        if (how == BR_ALWAYS) {
            *out = (elem){E_ANY, 0};
            return true;
        }
    } else {
        /* Without "-" the content is the class text itself; it is never
         * empty (a "]" right after "[" or "[!" is content) nor a lone "!". */
        neg = p[start] == '!';
        for (size_t i = start + (size_t)neg; i < end; i++)
            r[n++] = (range){p[i], p[i]};
    }
    *cost += (uint64_t)n * (1 + bit_length(n)); /* the sort */
    n = normalize(r, n);
    if (!n) {
        if (!neg) return false;
        *out = (elem){E_ANY, 0};
        return true;
    }
    if (!neg && n == 1 && r[0].lo == r[0].hi) {
        *out = (elem){E_LIT, r[0].lo};
        return true;
    }
    g->c[g->nc] = (cls){.at = (uint32_t)g->nr,
                        .n = (uint32_t)n,
                        .cost = 1 + bit_length(n),
                        .id = (uint32_t)g->nc,
                        .neg = neg};
    *out = (elem){E_CLS, (uint32_t)g->nc++};
    g->nr += n;
    return true;
}

/* Classes of the same content share an id, so that a segment of many
 * copies of one bracket tests it once per code point of the name. */
static void dedup_classes(prog *g)
{
    if (!g->nc) return;
    memset(g->hslot, 0, g->hcap * sizeof *g->hslot);
    for (size_t i = 0; i < g->nc; i++) {
        cls *k = &g->c[i];
        uint64_t h = 1469598103934665603ull ^ k->neg;
        for (uint32_t q = 0; q < k->n; q++)
            h = (h ^ (((uint64_t)g->r[k->at + q].lo << 32) | g->r[k->at + q].hi)) *
                1099511628211ull;
        size_t at = (size_t)(h ^ (h >> 29)) & (g->hcap - 1);
        for (;; at = (at + 1) & (g->hcap - 1)) {
            uint32_t o = g->hslot[at];
            if (!o) {
                g->hslot[at] = (uint32_t)i + 1;
                break;
            }
            const cls *x = &g->c[o - 1];
            if (x->neg == k->neg && x->n == k->n &&
                memcmp(g->r + x->at, g->r + k->at, k->n * sizeof *g->r) == 0) {
                k->id = x->id;
                break;
            }
        }
    }
}

/* The pattern's elements and segments; 0, or 1 when it can match nothing. */
static int compile(prog *g, meter *m)
{
    const uint32_t *p = g->p;
    size_t pn = g->pn, nxt = pn;
    g->close[pn] = pn;
    for (size_t j = pn; j-- > 0;) {
        if (p[j] == ']') nxt = j;
        g->close[j] = nxt;
    }
    uint64_t cost = pn;
    g->ne = g->nc = g->nr = 0;
    g->cut[0] = 0;
    g->nseg = 1;
    size_t i = 0;
    while (i < pn) {
        if (p[i] == '*') {
            while (i < pn && p[i] == '*')
                i++;
            g->cut[g->nseg++] = g->ne;
            continue;
        }
        if (p[i] == '?') {
            g->e[g->ne++] = (elem){E_ANY, 0};
            i++;
            continue;
        }
        if (p[i] == '[') {
            size_t j = i + 1;
            if (j < pn && p[j] == '!') j++;
            if (j < pn && p[j] == ']') j++;
            size_t k = j < pn ? g->close[j] : pn;
            if (k < pn) { /* else an unclosed "[" is a literal */
                cost += k - i;
                if (!bracket(g, i + 1, k, &g->e[g->ne++], &cost)) return charge(m, cost) ? -1 : 1;
                i = k + 1;
                continue;
            }
        }
        g->e[g->ne++] = (elem){E_LIT, p[i++]};
    }
    g->cut[g->nseg] = g->ne;
    dedup_classes(g);
    return charge(m, cost + g->nr) ? -1 : 0;
}

static bool cls_has(const prog *g, const cls *k, uint32_t c)
{
    const range *r = g->r + k->at;
    size_t lo = 0, hi = k->n; /* the first range that starts after c */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].lo <= c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo > 0 && c <= r[lo - 1].hi) != k->neg;
}

/* Segment e[a, b) against the name at `at`: 1, 0, -1 over the bound. */
static int match_at(const prog *g, size_t a, size_t b, size_t at, meter *m)
{
    uint64_t cost = 0;
    bool ok = true;
    for (size_t i = a; i < b && ok; i++) {
        elem x = g->e[i];
        uint32_t c = g->s[at + i - a];
        cost++;
        if (x.kind == E_LIT) {
            ok = x.v == c;
        } else if (x.kind == E_CLS) {
            cost += g->c[x.v].cost;
            ok = cls_has(g, &g->c[x.v], c);
        }
    }
    return charge(m, cost) ? -1 : ok;
}

/* Scratch of one search, on the stack when small. */
typedef struct scratch {
    _Alignas(16) char stack[2048];
    arena a;
} scratch;

static void *scratch_get(scratch *sc, size_t n)
{
    sc->a = (arena){n <= sizeof sc->stack ? sc->stack : malloc(n), 0};
    return sc->a.buf;
}

static void scratch_put(scratch *sc)
{
    if (sc->a.buf != sc->stack) free(sc->a.buf);
}

/* The leftmost occurrence of the all-literal segment e[a, b) that lies in
 * s[from, to) (KMP: each code point of the name is looked at about twice):
 * 1 with *at, 0 none, -1 over the bound or out of memory (no match). */
static int find_literal(const prog *g, size_t a, size_t b, size_t from, size_t to, size_t *at,
                        meter *m)
{
    const elem *e = g->e + a;
    size_t n = b - a;
    scratch sc;
    size_t *fail = scratch_get(&sc, n * sizeof *fail);
    if (!fail) return 0;
    fail[0] = 0;
    for (size_t i = 1, k = 0; i < n; i++) {
        while (k && e[i].v != e[k].v)
            k = fail[k - 1];
        if (e[i].v == e[k].v) k++;
        fail[i] = k;
    }
    int r = charge(m, 2 * n) ? -1 : 0;
    for (size_t j = from, k = 0; r == 0 && j < to; j++) {
        uint32_t c = g->s[j];
        uint64_t cost = 2;
        while (k && e[k].v != c) {
            k = fail[k - 1];
            cost++;
        }
        if (e[k].v == c && ++k == n) {
            *at = j + 1 - n;
            r = 1;
        }
        if (charge(m, cost)) r = -1;
    }
    scratch_put(&sc);
    return r;
}

/* The leftmost occurrence of segment e[a, b) (with "?" or brackets) that
 * lies in s[from, to): Shift-And over code points, ceil(len / 64) words per
 * code point of the name, plus a membership test per distinct bracket. The
 * masks of the segment's literals are kept per distinct code point (ASCII
 * through a table), those of its brackets per distinct content. */
static int find_bits(const prog *g, size_t a, size_t b, size_t from, size_t to, size_t *at,
                     meter *m)
{
    const elem *e = g->e + a;
    size_t n = b - a, W = (n + 63) / 64, nlit = 0, ncls = 0;
    for (size_t i = 0; i < n; i++) {
        nlit += e[i].kind == E_LIT;
        ncls += e[i].kind == E_CLS;
    }
    range *lits;   /* (code point, position), sorted */
    uint32_t *lcp; /* distinct literal code points, sorted */
    uint32_t *ccl; /* distinct class ids of the segment */
    uint32_t *slot, *hits;
    int32_t *asc;
    scratch sc, sm;
    sc.a = (arena){0};
    for (int pass = 0; pass < 2; pass++) {
        arena *ar = &sc.a;
        if (pass && !scratch_get(&sc, ar->used)) return 0;
        lits = take(ar, nlit * sizeof *lits);
        lcp = take(ar, nlit * sizeof *lcp);
        ccl = take(ar, ncls * sizeof *ccl);
        hits = take(ar, ncls * sizeof *hits);
        slot = take(ar, g->nc * sizeof *slot);
        asc = take(ar, 128 * sizeof *asc);
    }
    if (charge(m, (uint64_t)nlit * (1 + bit_length(nlit)) + g->nc + 128)) {
        scratch_put(&sc);
        return -1;
    }
    size_t nl = 0, dl = 0, dc = 0;
    for (size_t i = 0; i < n; i++)
        if (e[i].kind == E_LIT) lits[nl++] = (range){e[i].v, (uint32_t)i};
    qsort(lits, nl, sizeof *lits, range_cmp);
    for (size_t i = 0; i < nl; i++)
        if (!dl || lcp[dl - 1] != lits[i].lo) lcp[dl++] = lits[i].lo;
    for (size_t i = 0; i < g->nc; i++)
        slot[i] = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        if (e[i].kind != E_CLS) continue;
        uint32_t id = g->c[e[i].v].id;
        if (slot[id] == UINT32_MAX) {
            slot[id] = (uint32_t)dc;
            ccl[dc++] = id;
        }
    }
    /* the state, then one mask for "?", each distinct literal and class */
    size_t nmask = (2 + dl + dc) * W;
    if (charge(m, nmask)) {
        scratch_put(&sc);
        return -1;
    }
    uint64_t *D = scratch_get(&sm, nmask * sizeof *D);
    if (!D) {
        scratch_put(&sc);
        return 0;
    }
    uint64_t *anym = D + W, *lm = D + 2 * W, *cm = lm + dl * W;
    memset(D, 0, nmask * sizeof *D);
    for (size_t i = 0, d = 0; i < nl; i++) {
        while (lcp[d] != lits[i].lo)
            d++;
        lm[d * W + lits[i].hi / 64] |= 1ull << (lits[i].hi % 64);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t bit = 1ull << (i % 64);
        if (e[i].kind == E_ANY) anym[i / 64] |= bit;
        if (e[i].kind == E_CLS) cm[slot[g->c[e[i].v].id] * W + i / 64] |= bit;
    }
    for (uint32_t c = 0; c < 128; c++)
        asc[c] = -1;
    for (size_t d = 0; d < dl && lcp[d] < 128; d++)
        asc[lcp[d]] = (int32_t)d;
    uint64_t dcost = 1;
    for (size_t q = 0; q < dc; q++)
        dcost += g->c[ccl[q]].cost;
    uint64_t top = 1ull << ((n - 1) % 64);
    int r = 0;
    for (size_t j = from; r == 0 && j < to; j++) {
        uint32_t c = g->s[j];
        const uint64_t *lmask = NULL;
        if (c < 128) {
            if (asc[c] >= 0) lmask = lm + (size_t)asc[c] * W;
        } else {
            size_t lo = 0, hi = dl;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (lcp[mid] < c)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < dl && lcp[lo] == c) lmask = lm + lo * W;
        }
        size_t nh = 0;
        for (size_t q = 0; q < dc; q++)
            if (cls_has(g, &g->c[ccl[q]], c)) hits[nh++] = (uint32_t)q;
        uint64_t carry = 1;
        for (size_t w = 0; w < W; w++) {
            uint64_t bm = anym[w];
            if (lmask) bm |= lmask[w];
            for (size_t h = 0; h < nh; h++)
                bm |= cm[hits[h] * W + w];
            uint64_t d = D[w];
            D[w] = ((d << 1) | carry) & bm;
            carry = d >> 63;
        }
        if (D[W - 1] & top) {
            *at = j + 1 - n;
            r = 1;
        }
        if (charge(m, dcost + bit_length(dl) + W * (1 + (lmask != NULL) + nh))) r = -1;
    }
    scratch_put(&sm);
    scratch_put(&sc);
    return r;
}

/* 1 match, 0 none, -1 over the bound. */
static int run(prog *g, meter *m)
{
    int r = compile(g, m);
    if (r) return r < 0 ? -1 : 0;
    if (g->ne > g->sn) return 0; /* each element takes one code point */
    if (g->nseg == 1) return g->sn == g->ne ? match_at(g, 0, g->ne, 0, m) : 0;
    size_t head = g->cut[1], tail = g->ne - g->cut[g->nseg - 1];
    if ((r = match_at(g, 0, head, 0, m)) != 1) return r;
    if ((r = match_at(g, g->cut[g->nseg - 1], g->ne, g->sn - tail, m)) != 1) return r;
    /* the middle segments still to place need this much of the name */
    size_t rest = g->cut[g->nseg - 1] - head, pos = head, end = g->sn - tail;
    for (size_t k = 1; k + 1 < g->nseg; k++) {
        size_t a = g->cut[k], b = g->cut[k + 1], at = 0;
        bool lit = true;
        for (size_t i = a; i < b && lit; i++)
            lit = g->e[i].kind == E_LIT;
        rest -= b - a;
        r = lit ? find_literal(g, a, b, pos, end - rest, &at, m)
                : find_bits(g, a, b, pos, end - rest, &at, m);
        if (r != 1) return r;
        pos = at + (b - a);
    }
    return 1;
}

int glob_match_steps(const char *pattern, const char *name, uint64_t *steps, uint64_t max_steps)
{
    uint64_t own = 0;
    meter m = {steps ? steps : &own, max_steps ? max_steps : UINT64_MAX};
    size_t pl = strlen(pattern), nl = strlen(name);
    if (charge(&m, CALL_STEPS + pl + nl)) return -1;
    _Alignas(16) char stack[8192];
    prog g;
    arena a = {0};
    carve(&g, &a, pl, nl);
    a = (arena){a.used <= sizeof stack ? stack : malloc(a.used), 0};
    if (!a.buf) return 0;
    carve(&g, &a, pl, nl);
    g.pn = decode_all(pattern, pl, g.p);
    g.sn = decode_all(name, nl, g.s);
    int r = run(&g, &m);
    if (a.buf != stack) free(a.buf);
    return r;
}

bool glob_match(const char *pattern, const char *name)
{
    return glob_match_steps(pattern, name, NULL, 0) == 1;
}

void glob_lit_init(glob_lit *g, const char *pattern)
{
    size_t len = strlen(pattern);
    size_t pre = strcspn(pattern, "*?[");
    *g = (glob_lit){
        .valid = utf8_valid(pattern, len, NULL), .literal = pre == len, .len = len, .pre = pre};
    const char *star = strrchr(pattern, '*');
    /* a "*" inside a bracket is no wildcard: no suffix from a pattern with one */
    if (star && !strchr(pattern, '[') && !strchr(star, '?'))
        g->suf = len - (size_t)(star + 1 - pattern);
    /* "abc*", "*.csv", "a**z", "*": the wildcards are one run of "*" */
    g->exact = star && g->pre + strspn(pattern + g->pre, "*") + g->suf == len;
}

int glob_lit_check(const glob_lit *g, const char *pattern, const char *name, size_t nlen,
                   bool name_valid)
{
    if (!g->valid || !name_valid) return -1;
    if (g->literal) return nlen == g->len && memcmp(name, pattern, nlen) == 0;
    if (nlen < g->pre + g->suf || memcmp(name, pattern, g->pre) != 0 ||
        memcmp(name + nlen - g->suf, pattern + g->len - g->suf, g->suf) != 0)
        return 0;
    return g->exact ? 1 : -1;
}

/* ------------------------------------------------------------ glob sets */

/* Patterns by their literal prefix (or suffix), hashed the way a name's
 * bytes are walked, so that one walk over a name finds every pattern whose
 * prefix it starts with: O(name length) whatever the number of patterns. */
typedef struct affix {
    size_t cap;    /* slots, a power of two; 0 = no pattern */
    uint64_t *key; /* hash of (affix, its length) | 1; 0 = free slot */
    size_t *head;  /* the first pattern in the slot */
    bool *len;     /* [0..maxlen]: some affix has this length */
    size_t maxlen;
} affix;

struct glob_set {
    const char *const *pat;
    size_t n;
    glob_lit *lit;
    size_t *next;    /* the next pattern of the same literal text or affix slot; SIZE_MAX = none */
    bool *matched;   /* pattern i has matched a name */
    adx_strmap text; /* literal text -> its number among the distinct texts */
    size_t *first;   /* that number -> the first literal pattern with the text */
    affix pre, suf;  /* patterns with a literal prefix; without one, with a suffix */
    size_t *rest, nrest; /* neither literal, prefix nor suffix (or not valid UTF-8) */
    uint64_t own_steps, *steps, max_steps;
    bool over;
};

static uint64_t fnv_step(uint64_t h, unsigned char b)
{
    return (h ^ b) * 1099511628211ull;
}

static uint64_t slot_key(uint64_t h, size_t l)
{
    return (h ^ ((uint64_t)l * 0x9e3779b97f4a7c15ull)) | 1;
}

/* A pattern's affix: its first l bytes, or (suffix) its last l read
 * backwards, as a name is walked. */
static uint64_t affix_hash(const char *pat, size_t plen, size_t l, bool suffix)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < l; k++)
        h = fnv_step(h, (unsigned char)pat[suffix ? plen - 1 - k : k]);
    return slot_key(h, l);
}

static int affix_init(affix *x, glob_set *s, const size_t *idx, size_t n, bool suffix)
{
    memset(x, 0, sizeof *x);
    if (!n) return 0;
    x->cap = 8;
    while (x->cap < 2 * n)
        x->cap *= 2;
    for (size_t k = 0; k < n; k++) {
        size_t l = suffix ? s->lit[idx[k]].suf : s->lit[idx[k]].pre;
        if (l > x->maxlen) x->maxlen = l;
    }
    x->key = calloc(x->cap, sizeof *x->key);
    x->head = malloc(x->cap * sizeof *x->head);
    x->len = calloc(x->maxlen + 1, sizeof *x->len);
    if (!x->key || !x->head || !x->len) return -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k], l = suffix ? s->lit[i].suf : s->lit[i].pre;
        uint64_t key = affix_hash(s->pat[i], s->lit[i].len, l, suffix);
        size_t at = (size_t)key & (x->cap - 1);
        while (x->key[at] && x->key[at] != key)
            at = (at + 1) & (x->cap - 1);
        s->next[i] = x->key[at] ? x->head[at] : SIZE_MAX;
        x->key[at] = key;
        x->head[at] = i;
        x->len[l] = true;
    }
    return 0;
}

static void affix_free(affix *x)
{
    free(x->key);
    free(x->head);
    free(x->len);
}

void glob_set_free(glob_set *s)
{
    if (!s) return;
    adx_strmap_free(&s->text);
    affix_free(&s->pre);
    affix_free(&s->suf);
    free(s->lit);
    free(s->next);
    free(s->matched);
    free(s->first);
    free(s->rest);
    free(s);
}

glob_set *glob_set_new(const char *const *patterns, size_t n, uint64_t max_steps, uint64_t *steps)
{
    glob_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t cap = n ? n : 1, *pre = malloc(cap * sizeof *pre), *suf = malloc(cap * sizeof *suf);
    size_t npre = 0, nsuf = 0;
    *s = (glob_set){.pat = patterns, .n = n, .max_steps = max_steps ? max_steps : UINT64_MAX};
    s->steps = steps ? steps : &s->own_steps;
    s->lit = calloc(cap, sizeof *s->lit);
    s->next = malloc(cap * sizeof *s->next);
    s->matched = calloc(cap, sizeof *s->matched);
    s->first = malloc(cap * sizeof *s->first);
    s->rest = malloc(cap * sizeof *s->rest);
    bool ok = pre && suf && s->lit && s->next && s->matched && s->first && s->rest;
    for (size_t i = 0; ok && i < n; i++) {
        glob_lit *g = &s->lit[i];
        glob_lit_init(g, patterns[i]);
        s->next[i] = SIZE_MAX;
        if (!g->valid)
            s->rest[s->nrest++] = i;
        else if (g->pre && !g->literal)
            pre[npre++] = i;
        else if (!g->pre && g->suf)
            suf[nsuf++] = i;
        else if (!g->literal)
            s->rest[s->nrest++] = i;
        if (!g->valid || !g->literal) continue;
        size_t t;
        bool added;
        if (adx_strmap_add(&s->text, patterns[i], &t, &added) < 0) {
            ok = false;
        } else if (added) {
            s->first[t] = i;
        } else { /* the same text again: chained after the first, each counts */
            size_t at = s->first[t];
            while (s->next[at] != SIZE_MAX)
                at = s->next[at];
            s->next[at] = i;
        }
    }
    ok = ok && affix_init(&s->pre, s, pre, npre, false) == 0 &&
         affix_init(&s->suf, s, suf, nsuf, true) == 0;
    free(pre);
    free(suf);
    if (!ok) {
        glob_set_free(s);
        return NULL;
    }
    return s;
}

/* Try pattern i on the name. A pattern that has matched already is tried
 * again only while no other pattern matched the name: whether it ever
 * matched is all that is kept of it. Every try is charged, even one that
 * the literal text decides: many patterns that share a prefix, or many
 * patterns that go to every name, cost keys times patterns too. */
static void try_one(glob_set *s, size_t i, const char *name, size_t nl, bool valid, bool *any)
{
    if (s->over) return;
    const glob_lit *g = &s->lit[i];
    *s->steps += 1; /* a pattern passed over: one that matched before, on a name another matched */
    int r = 0;
    if (!(*any && s->matched[i])) {
        *s->steps += TRY_STEPS - 1 + (g->pre + g->suf) / 16; /* and the memcmp of glob_lit_check */
        r = glob_lit_check(g, s->pat[i], name, nl, valid);
        if (r < 0) r = glob_match_steps(s->pat[i], name, s->steps, s->max_steps);
    }
    if (r < 0 || *s->steps > s->max_steps) {
        s->over = true;
        return;
    }
    if (r) s->matched[i] = *any = true;
}

static void try_affix(glob_set *s, const affix *x, bool suffix, const char *name, size_t nl,
                      bool *any)
{
    uint64_t h = 1469598103934665603ull;
    size_t top = nl < x->maxlen ? nl : x->maxlen;
    for (size_t l = 1; l <= top && !s->over; l++) {
        h = fnv_step(h, (unsigned char)name[suffix ? nl - l : l - 1]);
        if (!x->len[l]) continue;
        uint64_t k = slot_key(h, l);
        size_t at = (size_t)k & (x->cap - 1);
        while (x->key[at] && x->key[at] != k)
            at = (at + 1) & (x->cap - 1);
        if (!x->key[at]) continue;
        for (size_t i = x->head[at]; i != SIZE_MAX; i = s->next[i]) /* the bytes: glob_lit_check */
            try_one(s, i, name, nl, true, any);
    }
}

int glob_set_any(glob_set *s, const char *name)
{
    if (s->over) return -1;
    size_t nl = strlen(name);
    bool any = false;
    if (!utf8_valid(name, nl, NULL)) {
        for (size_t i = 0; i < s->n; i++)
            try_one(s, i, name, nl, false, &any);
    } else {
        size_t t = adx_strmap_get(&s->text, name);
        for (size_t i = t == SIZE_MAX ? t : s->first[t]; i != SIZE_MAX; i = s->next[i])
            s->matched[i] = any = true;
        try_affix(s, &s->pre, false, name, nl, &any);
        try_affix(s, &s->suf, true, name, nl, &any);
        for (size_t k = 0; k < s->nrest; k++)
            try_one(s, s->rest[k], name, nl, true, &any);
    }
    return s->over ? -1 : any;
}

bool glob_set_matched(const glob_set *s, size_t i)
{
    return i < s->n && s->matched[i];
}
