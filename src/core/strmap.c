/* adx_strmap: see include/adx_common.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adx_common.h"

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* The slot of k, or of the empty place where it would go. */
static size_t map_slot(const adx_strmap *m, const char *k)
{
    size_t mask = m->cap - 1, h = (size_t)str_hash(k) & mask;
    while (m->keys[h] && strcmp(m->keys[h], k))
        h = (h + 1) & mask;
    return h;
}

size_t adx_strmap_get(const adx_strmap *m, const char *k)
{
    if (!m->cap) return SIZE_MAX;
    size_t h = map_slot(m, k);
    return m->keys[h] ? m->vals[h] : SIZE_MAX;
}

int adx_strmap_add(adx_strmap *m, const char *k, size_t *val, bool *added)
{
    if ((m->n + 1) * 2 > m->cap) {
        adx_strmap g = {.cap = m->cap ? m->cap * 2 : 64};
        g.keys = calloc(g.cap, sizeof *g.keys);
        g.vals = malloc(g.cap * sizeof *g.vals);
        if (!g.keys || !g.vals) {
            free(g.keys);
            free(g.vals);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t h = map_slot(&g, m->keys[i]);
                g.keys[h] = m->keys[i];
                g.vals[h] = m->vals[i];
            }
        g.n = m->n;
        adx_strmap_free(m);
        *m = g;
    }
    size_t h = map_slot(m, k);
    *added = !m->keys[h];
    if (*added) {
        m->keys[h] = k;
        m->vals[h] = m->n++;
    }
    *val = m->vals[h];
    return 0;
}

void adx_strmap_free(adx_strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
