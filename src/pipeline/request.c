/* adx_request implementation: option parsing for one export request. */
#include "adx_request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adx_datasets.h"
#include "adx_filter.h"

static const char *const known_members[] = {
    "adata",
    "dataset",
    "include",
    "format",
    "filename",
    "compression",
    "compression_opts",
    "categorical_columns",
    "strings_to_categoricals",
};

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void req_free(adx_request *r)
{
    if (!r) return;
    free(r->dataset);
    free(r->filename);
    free_strv(r->include, r->n_include);
    free_strv(r->cat_globs, r->n_cat);
    memset(r, 0, sizeof *r);
}

/* A member that is absent or JSON null: the default applies. */
static const json_t *member(const json_t *root, const char *key)
{
    const json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

int req_check_filename(const char *name, size_t len, const char *pointer, adx_err *err)
{
    if (len == 0) return adx_err_set(err, ADX_E_BAD_OPTION, pointer, "filename must not be empty");
    if (len > ADX_FILENAME_MAX)
        return adx_err_set(err, ADX_E_BAD_OPTION, pointer,
                           "filename is %zu bytes, at most %d are allowed", len, ADX_FILENAME_MAX);
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return adx_err_set(err, ADX_E_BAD_OPTION, pointer, "filename must not be \".\" or \"..\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        /* The name ends up in Content-Disposition and in a directory: path
         * separators and control characters have no safe meaning there. */
        if (c == '/' || c == '\\')
            return adx_err_set(err, ADX_E_BAD_OPTION, pointer,
                               "filename must not contain a path separator ('/' or '\\')");
        if (c < 0x20 || c == 0x7f)
            return adx_err_set(err, ADX_E_BAD_OPTION, pointer,
                               "filename must not contain control characters (byte 0x%02x at %zu)",
                               c, i);
    }
    return 0;
}

int req_format_from_filename(const char *name, adx_format *out)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return -1;
    static const struct {
        const char *ext;
        adx_format f;
    } map[] = {
        {".h5ad", ADX_FMT_H5AD}, {".h5", ADX_FMT_H5AD}, {".npz", ADX_FMT_NPZ},
        {".csv", ADX_FMT_CSV},   {".zip", ADX_FMT_CSV}, {".txt", ADX_FMT_TXT},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot, map[i].ext) == 0) {
            *out = map[i].f;
            return 0;
        }
    return -1;
}

static int parse_format(const json_t *v, adx_format *out, adx_err *err)
{
    if (!json_is_string(v))
        return adx_err_set(
            err, ADX_E_BAD_OPTION, "/format",
            "format must be a string: \"h5ad\", \"h5\", \"npz\", \"csv\" or \"txt\"");
    const char *s = json_string_value(v);
    if (!strcmp(s, "h5ad") || !strcmp(s, "h5"))
        *out = ADX_FMT_H5AD;
    else if (!strcmp(s, "npz"))
        *out = ADX_FMT_NPZ;
    else if (!strcmp(s, "csv"))
        *out = ADX_FMT_CSV;
    else if (!strcmp(s, "txt"))
        *out = ADX_FMT_TXT;
    else
        return adx_err_set(err, ADX_E_BAD_OPTION, "/format",
                           "unknown format \"%.64s\"; expected \"h5ad\", \"h5\", \"npz\", \"csv\" "
                           "or \"txt\"",
                           s);
    return 0;
}

/* Copy an array of strings; entries are reported as base/i. */
static int parse_strv(const json_t *v, const char *base, adx_errtype type, char ***out, size_t *n,
                      adx_err *err)
{
    if (!json_is_array(v))
        return adx_err_set(err, type, base, "%s must be an array of strings", base + 1);
    size_t len = json_array_size(v);
    char **s = calloc(len ? len : 1, sizeof *s);
    if (!s) return adx_err_set(err, ADX_E_NOMEM, base, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            char ptr[64];
            snprintf(ptr, sizeof ptr, "%s/%zu", base, i);
            free_strv(s, i);
            return adx_err_set(err, type, ptr, "%s entries must be strings", base + 1);
        }
        /* An embedded NUL would make the C string differ from what the
         * client sent, so the glob would match something else. */
        if (strlen(json_string_value(e)) != json_string_length(e)) {
            char ptr[64];
            snprintf(ptr, sizeof ptr, "%s/%zu", base, i);
            free_strv(s, i);
            return adx_err_set(err, type, ptr, "%s entries must not contain NUL characters",
                               base + 1);
        }
        s[i] = strdup(json_string_value(e));
        if (!s[i]) {
            free_strv(s, i);
            return adx_err_set(err, ADX_E_NOMEM, base, "out of memory");
        }
    }
    *out = s;
    *n = len;
    return 0;
}

static int parse_input(const json_t *root, req_mode mode, adx_request *r, adx_err *err)
{
    if (mode == REQ_OPTIONS) {
        /* The input is a file given beside the options; a second input in
         * the options would be ignored, so it is refused instead (even as
         * null, which is clearly a leftover of a request). */
        static const char *const inputs[] = {"adata", "dataset"};
        for (int k = 0; k < 2; k++)
            if (json_object_get(root, inputs[k])) {
                char ptr[16] = "";
                adx_ptr_append_key(ptr, sizeof ptr, inputs[k]);
                return adx_err_set(err, ADX_E_BAD_OPTION, ptr,
                                   "the options of a file export take no \"%s\": the file is "
                                   "the input",
                                   inputs[k]);
            }
        return 0;
    }
    const json_t *adata = member(root, "adata");
    const json_t *ds = member(root, "dataset");
    if (adata && ds)
        return adx_err_set(err, ADX_E_SCHEMA, "/dataset",
                           "give exactly one of \"adata\" and \"dataset\", not both");
    if (!adata && !ds)
        return adx_err_set(err, ADX_E_SCHEMA, "",
                           "the request needs \"adata\" (an AnnData object) or \"dataset\" (the "
                           "name of a stored dataset)");
    if (adata) {
        if (!json_is_object(adata))
            return adx_err_set(err, ADX_E_SCHEMA, "/adata", "adata must be an object, got %s",
                               json_is_array(adata)    ? "an array"
                               : json_is_string(adata) ? "a string"
                                                       : "a scalar");
        r->has_adata = true;
        return 0;
    }
    if (!json_is_string(ds))
        return adx_err_set(err, ADX_E_SCHEMA, "/dataset", "dataset must be a string");
    /* strlen catches an embedded NUL, which ds_name_valid cannot see. */
    if (strlen(json_string_value(ds)) != json_string_length(ds) ||
        !ds_name_valid(json_string_value(ds)))
        return adx_err_set(err, ADX_E_BAD_OPTION, "/dataset",
                           "dataset names are 1-%d characters of [A-Za-z0-9._-], not starting "
                           "with a dot",
                           ADX_DATASET_NAME_MAX);
    r->dataset = strdup(json_string_value(ds));
    if (!r->dataset) return adx_err_set(err, ADX_E_NOMEM, "/dataset", "out of memory");
    return 0;
}

static int parse_compression(const json_t *root, adx_request *r, adx_err *err)
{
    const json_t *c = json_object_get(root, "compression");
    if (!c) {
        r->compression = ADX_COMP_GZIP;
    } else if (json_is_null(c)) {
        r->compression = ADX_COMP_NONE;
    } else if (!json_is_string(c)) {
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression",
                           "compression must be \"gzip\", \"lzf\" or null");
    } else {
        const char *s = json_string_value(c);
        if (!strcmp(s, "gzip"))
            r->compression = ADX_COMP_GZIP;
        else if (!strcmp(s, "lzf"))
            r->compression = ADX_COMP_LZF;
        else if (!strcmp(s, "none"))
            r->compression = ADX_COMP_NONE;
        else
            return adx_err_set(err, ADX_E_BAD_OPTION, "/compression",
                               "unknown compression \"%.64s\"; expected \"gzip\", \"lzf\" or null",
                               s);
    }
    if (r->compression == ADX_COMP_LZF && r->format != ADX_FMT_H5AD)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression",
                           "lzf compression exists only for h5ad; %s files take \"gzip\" or null",
                           adx_format_name(r->format));

    const json_t *o = member(root, "compression_opts");
    if (!o) {
        r->level = r->compression == ADX_COMP_GZIP ? 4 : -1;
        return 0;
    }
    if (r->compression != ADX_COMP_GZIP)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression_opts",
                           "compression_opts is a gzip level; it cannot be combined with "
                           "compression %s",
                           r->compression == ADX_COMP_LZF ? "\"lzf\"" : "null");
    if (!json_is_integer(o))
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression_opts",
                           "compression_opts must be an integer gzip level 0-9");
    json_int_t lv = json_integer_value(o);
    if (lv < 0 || lv > 9)
        return adx_err_set(err, ADX_E_BAD_OPTION, "/compression_opts",
                           "gzip level %lld is out of range 0-9", (long long)lv);
    r->level = (int)lv;
    return 0;
}

static int parse_options(const json_t *root, req_mode mode, adx_request *r, adx_err *err)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)root, key, val)
    {
        size_t i = 0;
        while (i < sizeof known_members / sizeof known_members[0] && strcmp(key, known_members[i]))
            i++;
        if (i == sizeof known_members / sizeof known_members[0]) {
            char ptr[ADX_ERR_PTR_MAX] = "";
            adx_ptr_append_key(ptr, sizeof ptr, key);
            return adx_err_set(err, ADX_E_SCHEMA, ptr,
                               "unknown member \"%.128s\"; the request takes adata, dataset, "
                               "include, format, filename, compression, compression_opts, "
                               "categorical_columns and strings_to_categoricals",
                               key);
        }
    }
    if (parse_input(root, mode, r, err)) return -1;

    const json_t *fmt = member(root, "format");
    const json_t *fn = member(root, "filename");
    if (fmt && parse_format(fmt, &r->format, err)) return -1;
    if (fn) {
        if (!json_is_string(fn))
            return adx_err_set(err, ADX_E_BAD_OPTION, "/filename", "filename must be a string");
        const char *s = json_string_value(fn);
        if (req_check_filename(s, json_string_length(fn), "/filename", err)) return -1;
        adx_format from_ext;
        if (req_format_from_filename(s, &from_ext) == 0) {
            if (!fmt) {
                r->format = from_ext;
            } else {
                bool zip_bundle = from_ext == ADX_FMT_CSV && r->format == ADX_FMT_TXT &&
                                  strcasecmp(strrchr(s, '.'), ".zip") == 0;
                if (from_ext != r->format && !zip_bundle)
                    return adx_err_set(err, ADX_E_BAD_OPTION, "/filename",
                                       "the extension of \"%.128s\" means %s, which contradicts "
                                       "format \"%s\"",
                                       s, adx_format_name(from_ext), adx_format_name(r->format));
            }
        }
        r->filename = strdup(s);
        if (!r->filename) return adx_err_set(err, ADX_E_NOMEM, "/filename", "out of memory");
    }

    if (parse_compression(root, r, err)) return -1;

    const json_t *inc = member(root, "include");
    if (inc) {
        if (parse_strv(inc, "/include", ADX_E_BAD_INCLUDE, &r->include, &r->n_include, err))
            return -1;
        r->has_include = true;
        if (flt_validate((const char *const *)r->include, r->n_include, "/include", err)) return -1;
    }

    const json_t *cc = member(root, "categorical_columns");
    if (cc) {
        if (parse_strv(cc, "/categorical_columns", ADX_E_BAD_OPTION, &r->cat_globs, &r->n_cat, err))
            return -1;
    } else {
        r->cat_globs = calloc(1, sizeof *r->cat_globs);
        if (r->cat_globs) r->cat_globs[0] = strdup("kmeans_*");
        if (!r->cat_globs || !r->cat_globs[0]) {
            free(r->cat_globs);
            r->cat_globs = NULL;
            return adx_err_set(err, ADX_E_NOMEM, "/categorical_columns", "out of memory");
        }
        r->n_cat = 1;
    }

    const json_t *s2c = member(root, "strings_to_categoricals");
    if (s2c && !json_is_boolean(s2c))
        return adx_err_set(err, ADX_E_BAD_OPTION, "/strings_to_categoricals",
                           "strings_to_categoricals must be true or false");
    r->strings_to_categoricals = s2c ? json_is_true(s2c) : true;
    return 0;
}

int req_parse(const json_t *root, adx_request *r, adx_err *err)
{
    return req_parse_mode(root, REQ_REQUEST, r, err);
}

int req_parse_mode(const json_t *root, req_mode mode, adx_request *r, adx_err *err)
{
    memset(r, 0, sizeof *r);
    r->format = ADX_FMT_H5AD;
    r->compression = ADX_COMP_GZIP;
    r->level = 4;
    r->strings_to_categoricals = true;
    if (!json_is_object(root))
        return adx_err_set(err, ADX_E_SCHEMA, "", "the request must be a JSON object");
    if (parse_options(root, mode, r, err)) {
        req_free(r);
        return -1;
    }
    return 0;
}

char *req_filename(const adx_request *r, const char *job_id)
{
    if (r->filename) return strdup(r->filename);
    const char *base = job_id && *job_id ? job_id : "export";
    const char *ext = adx_format_ext(r->format);
    size_t n = strlen(base) + strlen(ext) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", base, ext);
    return s;
}
