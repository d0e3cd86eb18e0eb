/* Structured logs: one JSON object or one logfmt line per event. Only the
 * loop thread logs, so the file handle needs no lock. */
#include "adx_utf8.h"
#include "srv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *log_fp;
static bool log_owned;
static srv_log_format log_fmt;
static char log_path[PATH_MAX];

static int open_file(adx_err *err)
{
    if (!log_path[0]) {
        log_fp = stderr;
        log_owned = false;
        return 0;
    }
    FILE *f = fopen(log_path, "ae");
    if (!f) {
        if (err)
            adx_err_set(err, ADX_E_IO, "/log_file", "cannot open log file %s: %s", log_path,
                        strerror(errno));
        return -1;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    log_fp = f;
    log_owned = true;
    return 0;
}

int srv_log_open(const srv_config *c, adx_err *err)
{
    log_fmt = c->log_format;
    snprintf(log_path, sizeof log_path, "%s", c->log_file);
    return open_file(err);
}

int srv_log_reopen(void)
{
    /* Keep the old handle until the new one is open, so a failed reopen
     * (rotated to a directory that vanished) still logs somewhere. */
    FILE *old = log_fp;
    bool old_owned = log_owned;
    if (open_file(NULL) < 0) return -1;
    if (old && old_owned && old != log_fp) fclose(old);
    return 0;
}

void srv_log_close(void)
{
    if (log_fp && log_owned) fclose(log_fp);
    log_fp = NULL;
}

void srv_log_text(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)in;
    size_t left = strlen(in);
    while (*s && o + 5 < cap) {
        uint32_t cp;
        size_t n = utf8_decode(s, left, &cp);
        if (n == 0) {
            /* shown, not dropped: the line keeps what the client sent */
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *s);
            s++;
            left--;
            continue;
        }
        if (o + n >= cap) break;
        memcpy(out + o, s, n);
        o += n;
        s += n;
        left -= n;
    }
    out[o] = '\0';
}

static void logfmt_value(FILE *f, const char *s)
{
    bool quote = !*s;
    for (const unsigned char *p = (const unsigned char *)s; *p && !quote; p++)
        quote = *p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p); /* a control byte never reaches the terminal or the line */
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

json_t *srv_log_cause(json_t *fields, const adx_err *e)
{
    if (fields && e->cause[0]) json_object_set_new(fields, "cause", json_string(e->cause));
    return fields;
}

void srv_log(const char *level, const char *msg, json_t *fields)
{
    FILE *f = log_fp ? log_fp : stderr;
    char ts[40], tsms[48];
    int64_t now = srv_now_ms();
    srv_time_iso(now, ts, sizeof ts);
    /* milliseconds make request ordering readable */
    snprintf(tsms, sizeof tsms, "%.19s.%03dZ", ts, (int)(now % 1000));
    if (log_fmt == SRV_LOG_JSON) {
        json_t *o = json_object();
        if (o) {
            json_object_set_new(o, "time", json_string(tsms));
            json_object_set_new(o, "level", json_string(level));
            json_object_set_new(o, "msg", json_string(msg));
            if (fields) json_object_update(o, fields);
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
            if (s) {
                fputs(s, f);
                fputc('\n', f);
                free(s);
            }
            json_decref(o);
        }
    } else {
        fprintf(f, "time=%s level=%s msg=", tsms, level);
        logfmt_value(f, msg);
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v)
        {
            fprintf(f, " %s=", k);
            if (json_is_string(v)) {
                logfmt_value(f, json_string_value(v));
            } else {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
                if (s) logfmt_value(f, s);
                free(s);
            }
        }
        fputc('\n', f);
    }
    fflush(f);
    json_decref(fields);
}
