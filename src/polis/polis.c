/* Polis CSV export folder → participant × statement model, the way
 * valency-anndata's loader builds it with pandas (see adx_polis.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adx_polis.h"
#include "polis_csv.h"

typedef struct pctx {
    const adx_limits *lim;
    adx_report *rep;
    adx_err *err;
} pctx;

static int cell_err(pctx *c, const char *file, const pcsv_table *t, uint64_t row, const char *col,
                    const char *msg)
{
    char ptr[ADX_ERR_PTR_MAX] = "";
    adx_ptr_append_key(ptr, sizeof ptr, file);
    size_t l = strlen(ptr);
    snprintf(ptr + l, sizeof ptr - l, "/%llu", (unsigned long long)t->recno[row]);
    adx_ptr_append_key(ptr, sizeof ptr, col);
    return adx_err_set(c->err, ADX_E_SCHEMA, ptr, "%s: \"%.80s\"", msg,
                       pcsv_cell(t, row, (size_t)pcsv_col(t, col)));
}

static int load_table(pctx *c, const char *dir, const char *file, pcsv_table *t)
{
    char path[4096];
    char ptr[ADX_ERR_PTR_MAX] = "";
    adx_ptr_append_key(ptr, sizeof ptr, file);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return adx_err_set(c->err, ADX_E_IO, ptr, "path too long");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        adx_err_set(c->err, e == ENOENT ? ADX_E_NOT_FOUND : ADX_E_IO, ptr, "cannot open %s", file);
        return adx_err_cause(c->err, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return adx_err_set(c->err, ADX_E_IO, ptr, "%s is not a regular file", file);
    }
    if ((uint64_t)st.st_size > c->lim->max_body_bytes) {
        fclose(f);
        return adx_err_set(c->err, ADX_E_LIMIT, ptr, "%s is larger than max_body_bytes (%llu)",
                           file, (unsigned long long)c->lim->max_body_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return adx_err_set(c->err, ADX_E_NOMEM, ptr, "out of memory reading %s", file);
    }
    size_t got = fread(buf, 1, n, f);
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr || got != n) {
        free(buf);
        return adx_err_set(c->err, ADX_E_IO, ptr, "cannot read %s", file);
    }
    int rc = pcsv_parse(buf, n, file, c->lim, t, c->err);
    free(buf);
    return rc;
}

static long need_col(pctx *c, const pcsv_table *t, const char *file, const char *col)
{
    long k = pcsv_col(t, col);
    if (k < 0) {
        char ptr[ADX_ERR_PTR_MAX] = "";
        adx_ptr_append_key(ptr, sizeof ptr, file);
        adx_ptr_append_key(ptr, sizeof ptr, "1");
        adx_err_set(c->err, ADX_E_SCHEMA, ptr, "%s has no \"%s\" column", file, col);
    }
    return k;
}

/* An id column: integers (compared and printed as numbers, as pandas reads
 * them) or, when any value is not an integer, text compared bytewise. */
typedef struct idcol {
    bool numeric;
    int64_t *num; /* per row when numeric */
    const char **txt;
} idcol;

static int load_ids(pctx *c, const pcsv_table *t, const char *file, const char *name, idcol *ic)
{
    long k = need_col(c, t, file, name);
    if (k < 0) return -1;
    bool empty;
    pcsv_type ty = pcsv_column_type(t, (size_t)k, &empty);
    for (uint64_t r = 0; r < t->nrows; r++)
        if (!*pcsv_cell(t, r, (size_t)k)) return cell_err(c, file, t, r, name, "empty id");
    ic->numeric = ty == PCSV_INT;
    ic->num = calloc(t->nrows ? t->nrows : 1, sizeof *ic->num);
    ic->txt = calloc(t->nrows ? t->nrows : 1, sizeof *ic->txt);
    if (!ic->num || !ic->txt) return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    for (uint64_t r = 0; r < t->nrows; r++) {
        ic->txt[r] = pcsv_cell(t, r, (size_t)k);
        if (ic->numeric) pcsv_parse_i64(ic->txt[r], &ic->num[r]);
    }
    return 0;
}

static void idcol_free(idcol *ic)
{
    free(ic->num);
    free(ic->txt);
}

static int id_cmp(const idcol *ic, uint64_t a, uint64_t b)
{
    if (ic->numeric) return ic->num[a] < ic->num[b] ? -1 : ic->num[a] > ic->num[b];
    return strcmp(ic->txt[a], ic->txt[b]);
}

/* Sort helpers: qsort with a context pointer through a file-scope variable
 * is not thread-safe, so the sorts below are a small merge sort. */
typedef int (*cmp_fn)(const void *ctx, uint64_t a, uint64_t b);

static void msort(uint64_t *v, uint64_t *tmp, uint64_t n, cmp_fn cmp, const void *ctx)
{
    if (n < 2) return;
    uint64_t h = n / 2;
    msort(v, tmp, h, cmp, ctx);
    msort(v + h, tmp, n - h, cmp, ctx);
    uint64_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp(ctx, v[j], v[i]) < 0 ? v[j++] : v[i++]; /* ties keep the left: stable */
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int cmp_ids(const void *ctx, uint64_t a, uint64_t b)
{
    return id_cmp(ctx, a, b);
}

static int cmp_ts(const void *ctx, uint64_t a, uint64_t b)
{
    const double *ts = ctx;
    return ts[a] < ts[b] ? -1 : ts[a] > ts[b];
}

/* Distinct ids in sorted order: `key[r]` = rank of row r's id. Returns the
 * number of distinct ids; `first[k]` is a row holding id k. */
static int rank_ids(pctx *c, const idcol *ic, uint64_t n, uint64_t *key, uint64_t **first,
                    uint64_t *ndist)
{
    uint64_t *ord = malloc((n ? n : 1) * sizeof *ord), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    *first = malloc((n ? n : 1) * sizeof **first);
    if (!ord || !tmp || !*first) {
        free(ord);
        free(tmp);
        return adx_err_set(c->err, ADX_E_NOMEM, "", "out of memory");
    }
    for (uint64_t i = 0; i < n; i++)
        ord[i] = i;
    msort(ord, tmp, n, cmp_ids, ic);
    uint64_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i > 0 && id_cmp(ic, ord[i - 1], ord[i]) != 0) k++;
        if (i == 0 || id_cmp(ic, ord[i - 1], ord[i]) != 0) (*first)[k] = ord[i];
        key[ord[i]] = k;
    }
    *ndist = n ? k + 1 : 0;
    free(ord);
    free(tmp);
    return 0;
}

/* The id as pandas prints it: integers in decimal, text as is. */
static int id_text(const idcol *ic, uint64_t row, ad_strbuild *b)
{
    if (!ic->numeric) return ad_sb_push(b, ic->txt[row], strlen(ic->txt[row]));
    char tmp[24];
    int l = snprintf(tmp, sizeof tmp, "%lld", (long long)ic->num[row]);
    return ad_sb_push(b, tmp, (size_t)l);
}

static ad_elem *table_frame(const pcsv_table *t, const uint64_t *rows, uint64_t n)
{
    ad_elem *e = ad_elem_new(AD_K_FRAME);
    if (!e || ad_frame_default_index(&e->u.df, n) < 0) {
        ad_elem_free(e);
        return NULL;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        ad_elem *col = pcsv_column(t, c, rows, n);
        if (!col || ad_frame_add(&e->u.df, t->header[c], col) < 0) {
            ad_elem_free(e);
            return NULL;
        }
    }
    return e;
}

static int put_int(ad_dict *d, const char *k, int64_t v)
{
    ad_array a;
    if (ad_array_init(&a, AD_I64, 0, NULL) < 0) return -1;
    *(int64_t *)a.data = v;
    return ad_dict_put(d, k, ad_elem_from_array(&a));
}

static int put_str(ad_dict *d, const char *k, const char *v)
{
    ad_strbuild b = {0};
    ad_array a;
    if (ad_sb_push(&b, v, strlen(v)) < 0 || ad_sb_finish(&b, &a, 0, NULL) < 0) {
        ad_sb_free(&b);
        return -1;
    }
    return ad_dict_put(d, k, ad_elem_from_array(&a));
}

/* var columns of the loader: (var name, comments.csv column). */
static const char *const var_cols[][2] = {
    {"content", "comment-body"},   {"participant_id_authored", "author-id"},
    {"created_date", "timestamp"}, {"moderation_state", "moderated"},
    {"is_seed", "is-seed"},        {"is_meta", "is-meta"},
};

/* One import: the two tables and what is derived from them, freed in one
 * place (pread_free). Each step below fills its part or fails with the
 * error set. */
typedef struct pread {
    pctx c;
    pcsv_table votes, comments;
    idcol voter, com, ccom;
    uint64_t n;                 /* rows of votes.csv */
    double *ts, *vote;          /* per vote row */
    uint64_t *vkey, *ckey;      /* per vote row: rank of its voter / comment id */
    uint64_t *vfirst, *cfirst;  /* per distinct id: a row holding it */
    uint64_t nv, nc, cells;     /* voters, comments, nv * nc */
    uint64_t *kept, nkept;      /* the last vote per cell, in time order */
    uint64_t *cord, *crow, ncm; /* comments.csv rows by id; per var: its row */
} pread;

static int pr_nomem(pread *p)
{
    return adx_err_set(p->c.err, ADX_E_NOMEM, "", "out of memory building the Polis model");
}

static void pread_free(pread *p)
{
    pcsv_free(&p->votes);
    pcsv_free(&p->comments);
    idcol_free(&p->voter);
    idcol_free(&p->com);
    idcol_free(&p->ccom);
    free(p->ts);
    free(p->vote);
    free(p->vkey);
    free(p->ckey);
    free(p->vfirst);
    free(p->cfirst);
    free(p->kept);
    free(p->cord);
    free(p->crow);
}

/* Both tables, their id columns, and every timestamp and vote as a number. */
static int read_votes(pread *p, const char *dir)
{
    pctx *c = &p->c;
    if (load_table(c, dir, "votes.csv", &p->votes) < 0 ||
        load_table(c, dir, "comments.csv", &p->comments) < 0)
        return -1;
    long k_ts = need_col(c, &p->votes, "votes.csv", "timestamp");
    long k_vote = k_ts < 0 ? -1 : need_col(c, &p->votes, "votes.csv", "vote");
    if (k_vote < 0) return -1;
    if (load_ids(c, &p->votes, "votes.csv", "voter-id", &p->voter) < 0 ||
        load_ids(c, &p->votes, "votes.csv", "comment-id", &p->com) < 0 ||
        load_ids(c, &p->comments, "comments.csv", "comment-id", &p->ccom) < 0)
        return -1;
    uint64_t n = p->n = p->votes.nrows;
    p->ts = malloc((n ? n : 1) * sizeof *p->ts);
    p->vote = malloc((n ? n : 1) * sizeof *p->vote);
    if (!p->ts || !p->vote) return pr_nomem(p);
    for (uint64_t r = 0; r < n; r++) {
        if (!pcsv_parse_f64(pcsv_cell(&p->votes, r, (size_t)k_ts), &p->ts[r]) || isnan(p->ts[r]))
            return cell_err(c, "votes.csv", &p->votes, r, "timestamp", "timestamp is not a number");
        const char *v = pcsv_cell(&p->votes, r, (size_t)k_vote);
        p->vote[r] = NAN; /* an empty vote is a NaN cell, as pandas' pivot leaves it */
        if (*v && !pcsv_parse_f64(v, &p->vote[r]))
            return cell_err(c, "votes.csv", &p->votes, r, "vote", "vote is not a number");
    }
    return 0;
}

/* Rank the ids, check the matrix size against the limits, and keep the last
 * vote per (voter, comment) in time order. */
static int last_votes(pread *p)
{
    uint64_t n = p->n;
    size_t nb = (n ? n : 1) * sizeof(uint64_t);
    p->vkey = malloc(nb);
    p->ckey = malloc(nb);
    p->kept = malloc(nb);
    if (!p->vkey || !p->ckey || !p->kept) return pr_nomem(p);
    if (rank_ids(&p->c, &p->voter, n, p->vkey, &p->vfirst, &p->nv) < 0 ||
        rank_ids(&p->c, &p->com, n, p->ckey, &p->cfirst, &p->nc) < 0)
        return -1;
    const adx_limits *lim = p->c.lim;
    uint64_t shape[2] = {p->nv, p->nc};
    if (p->nv > lim->max_dim || p->nc > lim->max_dim || ad_shape_product(2, shape, &p->cells) < 0 ||
        p->cells > lim->max_elements || p->cells > lim->max_total_bytes / 16)
        return adx_err_set(p->c.err, ADX_E_LIMIT, "/votes.csv",
                           "the vote matrix would be %llu x %llu, above the configured limits",
                           (unsigned long long)p->nv, (unsigned long long)p->nc);
    uint64_t *ord = malloc(nb), *tmp = malloc(nb);
    /* Walking the time order backwards, the first vote met per cell is the
     * last one cast: one bit per cell instead of a position per cell. */
    uint64_t *last = calloc(p->cells / 64 + 1, sizeof *last);
    if (!ord || !tmp || !last) {
        free(ord);
        free(tmp);
        free(last);
        return pr_nomem(p);
    }
    for (uint64_t i = 0; i < n; i++) /* sort by timestamp (stable) */
        ord[i] = i;
    msort(ord, tmp, n, cmp_ts, p->ts);
    uint64_t nkept = 0;
    for (uint64_t i = n; i-- > 0;) {
        uint64_t cell = p->vkey[ord[i]] * p->nc + p->ckey[ord[i]];
        if (last[cell / 64] & (1ull << (cell % 64))) continue;
        last[cell / 64] |= 1ull << (cell % 64);
        p->kept[nkept++] = ord[i];
    }
    for (uint64_t i = 0; i < nkept / 2; i++) { /* back to time order */
        uint64_t t = p->kept[i];
        p->kept[i] = p->kept[nkept - 1 - i];
        p->kept[nkept - 1 - i] = t;
    }
    p->nkept = nkept;
    free(ord);
    free(tmp);
    free(last);
    return 0;
}

/* X (NaN where nobody voted) and the obs / var indexes: the sorted distinct
 * ids, named like pivot's axes. */
static int vote_matrix(pread *p, ad_anndata *a)
{
    uint64_t nv = p->nv, nc = p->nc, shape[2] = {nv, nc};
    a->n_obs = nv;
    a->n_vars = nc;
    ad_array X;
    if (ad_array_init(&X, AD_F64, 2, shape) < 0) return pr_nomem(p);
    double *xd = X.data;
    for (uint64_t i = 0; i < p->cells; i++)
        xd[i] = NAN;
    for (uint64_t i = 0; i < p->nkept; i++) {
        uint64_t r = p->kept[i];
        xd[p->vkey[r] * nc + p->ckey[r]] = p->vote[r];
    }
    if (!(a->X = ad_elem_from_array(&X))) return pr_nomem(p);
    ad_strbuild sb = {0};
    for (uint64_t k = 0; k < nv; k++)
        if (id_text(&p->voter, p->vfirst[k], &sb) < 0) goto nomem_sb;
    if (ad_sb_finish(&sb, &a->obs.index, 1, NULL) < 0) return pr_nomem(p);
    a->obs.n_rows = nv;
    for (uint64_t k = 0; k < nc; k++)
        if (id_text(&p->com, p->cfirst[k], &sb) < 0) goto nomem_sb;
    if (ad_sb_finish(&sb, &a->var.index, 1, NULL) < 0) return pr_nomem(p);
    a->var.n_rows = nc;
    if (!(a->obs.index_name = strdup("voter-id")) || !(a->var.index_name = strdup("comment-id")))
        return pr_nomem(p);
    return 0;
nomem_sb:
    ad_sb_free(&sb);
    return pr_nomem(p);
}

/* The comments.csv row of a var id: a binary search over the rows sorted by id.
 * Ids match by their printed form, so 7 in votes.csv finds "7" in
 * comments.csv. */
static uint64_t comment_row(const pread *p, const char *want)
{
    const idcol *ccom = &p->ccom;
    uint64_t lo = 0, hi = p->ncm;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, row = p->cord[mid];
        int cm;
        if (ccom->numeric) {
            int64_t w;
            if (!pcsv_parse_i64(want, &w)) break;
            cm = ccom->num[row] < w ? -1 : ccom->num[row] > w;
        } else {
            cm = strcmp(ccom->txt[row], want);
        }
        if (cm == 0) return row;
        if (cm < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return UINT64_MAX;
}

/* var columns from comments.csv, matched by comment id; voted-on ids
 * without a statement are reported. */
static int var_columns(pread *p, ad_anndata *a)
{
    uint64_t ncm = p->ncm = p->comments.nrows, nc = p->nc;
    p->cord = malloc((ncm ? ncm : 1) * sizeof *p->cord);
    p->crow = malloc((nc ? nc : 1) * sizeof *p->crow);
    uint64_t *ctmp = malloc((ncm ? ncm : 1) * sizeof *ctmp);
    if (!p->cord || !p->crow || !ctmp) {
        free(ctmp);
        return pr_nomem(p);
    }
    for (uint64_t i = 0; i < ncm; i++)
        p->cord[i] = i;
    msort(p->cord, ctmp, ncm, cmp_ids, &p->ccom);
    free(ctmp);
    for (uint64_t i = 1; i < ncm; i++)
        if (id_cmp(&p->ccom, p->cord[i - 1], p->cord[i]) == 0)
            return cell_err(&p->c, "comments.csv", &p->comments, p->cord[i], "comment-id",
                            "duplicate comment-id");
    for (uint64_t k = 0; k < nc; k++)
        p->crow[k] = comment_row(p, ad_str_at(&a->var.index, k));
    for (size_t i = 0; i < sizeof var_cols / sizeof *var_cols; i++) {
        long k = pcsv_col(&p->comments, var_cols[i][1]);
        if (k < 0) continue; /* optional in the export: no column rather than an invented one */
        ad_elem *col = pcsv_column(&p->comments, (size_t)k, p->crow, nc);
        if (!col || ad_frame_add(&a->var, var_cols[i][0], col) < 0) return pr_nomem(p);
    }
    uint64_t unmatched = 0;
    for (uint64_t k = 0; k < nc; k++)
        unmatched += p->crow[k] == UINT64_MAX;
    if (unmatched && p->c.rep)
        rep_add(p->c.rep, "/var", "missing_statement", unmatched,
                "voted-on comment ids absent from comments.csv; their var cells are missing");
    return 0;
}

/* uns: the deduplicated votes in time order and the comments table. */
static int uns_tables(pread *p, ad_anndata *a)
{
    ad_elem *uv = table_frame(&p->votes, p->kept, p->nkept);
    if (!uv || ad_dict_put(&a->uns, "votes", uv) < 0) return pr_nomem(p);
    for (uint64_t i = 0; i < p->ncm; i++)
        p->cord[i] = i;
    ad_elem *us = table_frame(&p->comments, p->cord, p->ncm);
    if (!us || ad_dict_put(&a->uns, "statements", us) < 0) return pr_nomem(p);
    ad_elem *meta = ad_elem_new(AD_K_DICT);
    if (!meta || ad_dict_put(&a->uns, "votes_meta", meta) < 0 ||
        put_str(&meta->u.dict, "via", "local_csv") < 0 ||
        put_int(&meta->u.dict, "n_votes", (int64_t)p->nkept) < 0 ||
        put_int(&meta->u.dict, "n_votes_raw", (int64_t)p->n) < 0)
        return pr_nomem(p);
    return 0;
}

ad_anndata *polis_read_dir(const char *dir, const adx_limits *lim, adx_report *rep, adx_err *err)
{
    adx_limits deflim;
    if (!lim) {
        adx_limits_default(&deflim);
        lim = &deflim;
    }
    pread p = {.c = {.lim = lim, .rep = rep, .err = err}};
    ad_anndata *a = NULL;
    if (read_votes(&p, dir) < 0 || last_votes(&p) < 0) goto fail;
    if (!(a = ad_anndata_new())) {
        pr_nomem(&p);
        goto fail;
    }
    if (vote_matrix(&p, a) < 0 || var_columns(&p, a) < 0 || uns_tables(&p, a) < 0 ||
        ad_anndata_check(a, NULL, err) < 0)
        goto fail;
    pread_free(&p);
    return a;
fail:
    ad_anndata_free(a);
    pread_free(&p);
    return NULL;
}
