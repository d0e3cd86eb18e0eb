/* Unit tests for the daemon's job table (src/server/jobs.c) without
 * sockets, loop or disk: states and counters, the FIFO, expiry with its
 * hooks, paging, cancel and the watchers that stand for ?wait requests. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

/* What the hooks saw. */
static int n_persist, n_expire, n_remove, n_unpin;
static char last_removed[SRV_ID_LEN + 1];

static void h_persist(void *ud, srv_job *j)
{
    n_persist++;
}
static void h_expire(void *ud, srv_job *j)
{
    n_expire++;
}
static void h_remove(void *ud, srv_job *j)
{
    n_remove++;
    snprintf(last_removed, sizeof last_removed, "%s", j->id);
}
static void h_unpin(void *ud, srv_job *j)
{
    n_unpin++;
}

static srv_jobs T;

static void setup(void)
{
    n_persist = n_expire = n_remove = n_unpin = 0;
    last_removed[0] = '\0';
    srv_jobs_hooks h = {NULL, h_persist, h_expire, h_remove, h_unpin};
    srv_jobs_init(&T, 3, 10, &h); /* queue_max 3, ttl 10 s */
}

static void teardown(void)
{
    srv_jobs_free_all(&T);
}

/* Ids sort by time: job k of a test gets a later id than job k-1. */
static srv_job *add(int k, srv_job_state st)
{
    char id[SRV_ID_LEN + 1];
    snprintf(id, sizeof id, "01J%023d", k);
    srv_job *j = srv_job_new(id, st);
    ck_assert_ptr_nonnull(j);
    srv_jobs_link(&T, j);
    if (st == SRV_JOB_QUEUED) srv_jobs_enqueue(&T, j);
    return j;
}

START_TEST(fifo_and_counters)
{
    srv_job *a = add(1, SRV_JOB_QUEUED), *b = add(2, SRV_JOB_QUEUED);
    ck_assert_uint_eq(T.n_queued, 2);
    ck_assert(!srv_jobs_queue_full(&T));
    T.n_validating = 1;
    ck_assert(srv_jobs_queue_full(&T)); /* bodies being validated count */
    T.n_validating = 0;
    ck_assert_ptr_eq(srv_jobs_dequeue(&T), a); /* oldest first */
    ck_assert(srv_jobs_event(&T, a, SRV_EV_START, 100));
    ck_assert_uint_eq(T.n_running, 1);
    ck_assert_uint_eq(T.n_queued, 1);
    ck_assert_int_eq(a->state, SRV_JOB_RUNNING);
    /* a refused event changes nothing */
    ck_assert(!srv_jobs_event(&T, b, SRV_EV_SUCCEED, 100));
    ck_assert_int_eq(b->state, SRV_JOB_QUEUED);
    ck_assert(srv_jobs_event(&T, a, SRV_EV_SUCCEED, 200));
    ck_assert_uint_eq(T.n_running, 0);
    ck_assert_int_eq(a->finished_ms, 200);
    ck_assert_uint_eq(srv_jobs_count_state(&T, SRV_JOB_SUCCEEDED), 1);
    ck_assert_uint_eq(srv_jobs_count_state(&T, SRV_JOB_QUEUED), 1);
    ck_assert_ptr_eq(srv_jobs_find(&T, b->id), b);
    ck_assert_ptr_null(srv_jobs_find(&T, "01J00000000000000000000999"));
    /* interrupted by a shutdown: back to queued, not terminal */
    srv_job *c = srv_jobs_dequeue(&T);
    ck_assert_ptr_eq(c, b);
    srv_jobs_event(&T, c, SRV_EV_START, 300);
    ck_assert(srv_jobs_event(&T, c, SRV_EV_INTERRUPT, 300));
    ck_assert_int_eq(c->state, SRV_JOB_QUEUED);
    ck_assert_uint_eq(T.n_running, 0);
    ck_assert_int_eq(c->finished_ms, 0);
}
END_TEST

/* What srv_run_dispatch does, with `workers` workers: start queued jobs
 * while a worker is free and the table admits the queue's head. */
static unsigned dispatch(unsigned workers, int64_t now)
{
    unsigned started = 0;
    srv_job *j;
    while (T.n_running < workers && (j = srv_jobs_dequeue_admitted(&T))) {
        ck_assert(srv_jobs_event(&T, j, SRV_EV_START, now));
        started++;
    }
    return started;
}

START_TEST(memory_admission)
{
    const uint64_t G = 1ull << 30;
    T.max_memory = 10 * G;
    srv_job *a = add(1, SRV_JOB_QUEUED), *b = add(2, SRV_JOB_QUEUED), *c = add(3, SRV_JOB_QUEUED);
    a->mem_bytes = 6 * G; /* a + b > max_memory: one at a time */
    b->mem_bytes = 6 * G;
    c->mem_bytes = 1 * G; /* would fit next to a, but FIFO: it waits behind b */
    ck_assert_uint_eq(dispatch(2, 100), 1);
    ck_assert_int_eq(a->state, SRV_JOB_RUNNING);
    ck_assert_int_eq(b->state, SRV_JOB_QUEUED);
    ck_assert_int_eq(c->state, SRV_JOB_QUEUED);
    ck_assert_uint_eq(T.mem_running, 6 * G);
    ck_assert_uint_eq(dispatch(2, 150), 0); /* a free worker changes nothing */
    /* a ends: its estimate is released, b starts, then c fits next to b */
    ck_assert(srv_jobs_event(&T, a, SRV_EV_SUCCEED, 200));
    ck_assert_uint_eq(T.mem_running, 0);
    ck_assert_uint_eq(dispatch(2, 200), 2);
    ck_assert_int_eq(b->state, SRV_JOB_RUNNING);
    ck_assert_int_eq(c->state, SRV_JOB_RUNNING);
    ck_assert_uint_eq(T.mem_running, 7 * G);
    ck_assert_uint_eq(T.n_queued, 0);
    /* a failure and an interrupt release the estimate too */
    ck_assert(srv_jobs_event(&T, b, SRV_EV_FAIL, 300));
    ck_assert(srv_jobs_event(&T, c, SRV_EV_INTERRUPT, 300));
    ck_assert_uint_eq(T.mem_running, 0);
    ck_assert_uint_eq(T.n_running, 0);
}
END_TEST

START_TEST(memory_admission_lone_job_runs)
{
    const uint64_t G = 1ull << 30;
    T.max_memory = 4 * G;
    srv_job *big = add(1, SRV_JOB_QUEUED), *small = add(2, SRV_JOB_QUEUED);
    big->mem_bytes = 64 * G; /* over budget on its own */
    small->mem_bytes = 1 * G;
    /* nothing runs, so the over-budget job runs, alone */
    ck_assert_uint_eq(dispatch(2, 100), 1);
    ck_assert_int_eq(big->state, SRV_JOB_RUNNING);
    ck_assert_int_eq(small->state, SRV_JOB_QUEUED);
    ck_assert(srv_jobs_event(&T, big, SRV_EV_SUCCEED, 200));
    ck_assert_uint_eq(dispatch(2, 200), 1);
    ck_assert_int_eq(small->state, SRV_JOB_RUNNING);
    /* and with a small job running, an over-budget one waits for it */
    srv_job *big2 = add(3, SRV_JOB_QUEUED);
    big2->mem_bytes = 64 * G;
    ck_assert_uint_eq(dispatch(2, 300), 0);
    ck_assert(srv_jobs_event(&T, small, SRV_EV_SUCCEED, 400));
    ck_assert_uint_eq(dispatch(2, 400), 1);
    ck_assert_int_eq(big2->state, SRV_JOB_RUNNING);
    ck_assert_ptr_null(srv_jobs_dequeue_admitted(&T)); /* queue empty */
}
END_TEST

START_TEST(memory_estimate)
{
    ck_assert_uint_eq(srv_job_mem_estimate(123ull << 20, 1), 123ull << 20); /* the model's */
    ck_assert_uint_eq(srv_job_mem_estimate(0, 10ull << 20), SRV_MEM_BODY_FACTOR * (10ull << 20));
    ck_assert_uint_eq(srv_job_mem_estimate(0, 10), SRV_MEM_MIN_BYTES);
    ck_assert_uint_eq(srv_job_mem_estimate(0, UINT64_MAX / 2), UINT64_MAX); /* saturates */
}
END_TEST

START_TEST(expiry)
{
    srv_job *a = add(1, SRV_JOB_SUCCEEDED), *f = add(2, SRV_JOB_FAILED);
    a->finished_ms = 1000;
    f->finished_ms = 2000;
    srv_jobs_track(&T, a);
    srv_jobs_track(&T, f);
    srv_jobs_tick(&T, 1000 + 9999); /* not yet */
    ck_assert_int_eq(a->state, SRV_JOB_SUCCEEDED);
    ck_assert_int_eq(n_expire, 0);
    srv_jobs_tick(&T, 1000 + 10000);
    ck_assert_int_eq(a->state, SRV_JOB_EXPIRED);
    ck_assert_int_eq(n_expire, 1);
    ck_assert_ptr_nonnull(srv_jobs_find(&T, f->id));
    char fid[SRV_ID_LEN + 1];
    memcpy(fid, f->id, sizeof fid);
    srv_jobs_tick(&T, 2000 + 10000); /* a failed job leaves the table */
    ck_assert_ptr_null(srv_jobs_find(&T, fid));
    ck_assert_int_eq(n_remove, 1);
    ck_assert_str_eq(last_removed, fid);
    /* the expired answer stays for one more TTL */
    srv_jobs_tick(&T, 1000 + 19999);
    ck_assert_ptr_eq(srv_jobs_find(&T, a->id), a);
    srv_jobs_tick(&T, 1000 + 20000);
    ck_assert_int_eq(n_remove, 2);
    ck_assert_ptr_null(T.head);
}
END_TEST

START_TEST(paging)
{
    for (int k = 1; k <= 7; k++)
        add(k, k % 2 ? SRV_JOB_SUCCEEDED : SRV_JOB_FAILED);
    srv_job *page[10];
    bool more;
    size_t n = srv_jobs_page(&T, -1, NULL, NULL, 3, page, &more);
    ck_assert_uint_eq(n, 3);
    ck_assert(more);
    ck_assert_str_eq(page[0]->id, "01J00000000000000000000007"); /* newest first */
    ck_assert_str_eq(page[2]->id, "01J00000000000000000000005");
    char cur[SRV_ID_LEN + 1];
    memcpy(cur, page[2]->id, sizeof cur);
    n = srv_jobs_page(&T, -1, NULL, cur, 3, page, &more);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(page[0]->id, "01J00000000000000000000004");
    ck_assert(more);
    memcpy(cur, page[2]->id, sizeof cur);
    n = srv_jobs_page(&T, -1, NULL, cur, 3, page, &more);
    ck_assert_uint_eq(n, 1);
    ck_assert(!more);
    /* state filter */
    n = srv_jobs_page(&T, SRV_JOB_FAILED, NULL, NULL, 10, page, &more);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(page[i]->state, SRV_JOB_FAILED);
    /* a cursor whose job is gone still pages from where it was */
    n = srv_jobs_page(&T, -1, NULL, "01J0000000000000000000000F", 2, page, &more);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(page[0]->id, "01J00000000000000000000007");
}
END_TEST

static int watch_calls;
static srv_job_state watch_state;
static void on_done(srv_job_watch *w, srv_job *j)
{
    watch_calls++;
    watch_state = j->state;
    ck_assert_ptr_null(w->job); /* detached before the call */
}

START_TEST(cancel_queued_calls_watchers)
{
    srv_job *a = add(1, SRV_JOB_QUEUED);
    a->pinned = true;
    srv_job_watch w1 = {.fn = on_done}, w2 = {.fn = on_done}, w3 = {.fn = on_done};
    srv_job_watch_add(a, &w1);
    srv_job_watch_add(a, &w2);
    srv_job_watch_add(a, &w3);
    srv_job_watch_remove(&w2); /* a waiter that went away */
    watch_calls = 0;
    srv_jobs_delete(&T, a, 5000);
    ck_assert_int_eq(a->state, SRV_JOB_CANCELED);
    ck_assert_int_eq(a->finished_ms, 5000);
    ck_assert_uint_eq(T.n_queued, 0);
    ck_assert_ptr_null(T.q_head);
    ck_assert_int_eq(watch_calls, 2);
    ck_assert_int_eq(watch_state, SRV_JOB_CANCELED);
    ck_assert_int_eq(n_unpin, 1);
    ck_assert(!a->pinned);
    ck_assert_int_eq(n_persist, 1);
    ck_assert_ptr_nonnull(a->error);
    ck_assert_ptr_null(a->watchers);
    /* a second DELETE forgets the canceled job */
    srv_jobs_delete(&T, a, 5001);
    ck_assert_int_eq(n_remove, 1);
    ck_assert_ptr_null(T.head);
}
END_TEST

START_TEST(cancel_running_sets_flag)
{
    srv_job *a = add(1, SRV_JOB_QUEUED);
    srv_jobs_dequeue(&T);
    srv_jobs_event(&T, a, SRV_EV_START, 10);
    srv_job_ref(a); /* the worker */
    srv_jobs_delete(&T, a, 20);
    ck_assert_int_eq(a->state, SRV_JOB_RUNNING); /* the worker ends it */
    ck_assert_int_eq(atomic_load(&a->cancel), 1);
    json_t *o = srv_job_json(a, "");
    ck_assert(json_is_true(json_object_get(o, "cancel_requested")));
    json_decref(o);
    ck_assert(srv_jobs_event(&T, a, SRV_EV_CANCEL, 30));
    ck_assert_int_eq(a->state, SRV_JOB_CANCELED);
    /* removed while the worker still holds it: freed on its last unref */
    srv_jobs_delete(&T, a, 40);
    ck_assert(a->removed);
    ck_assert_ptr_null(T.head);
    srv_job_unref(a);
}
END_TEST

/* An upload's job from its headers: visible with its bytes, canceled at
 * once while receiving (its watcher, the upload, is told), never persisted
 * (nothing of it is on disk), and the queue is not touched. */
START_TEST(cancel_receiving_tells_the_upload)
{
    srv_job *a = add(1, SRV_JOB_RECEIVING);
    snprintf(a->rid, sizeof a->rid, "client-42");
    a->bytes_received = 1000;
    a->bytes_expected = 5000;
    json_t *o = srv_job_json(a, "");
    ck_assert_str_eq(json_string_value(json_object_get(o, "state")), "receiving");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_received")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_expected")), 5000);
    ck_assert_str_eq(json_string_value(json_object_get(o, "request_id")), "client-42");
    json_decref(o);
    srv_job_watch w = {.fn = on_done};
    srv_job_watch_add(a, &w);
    watch_calls = 0;
    srv_jobs_delete(&T, a, 700);
    ck_assert_int_eq(a->state, SRV_JOB_CANCELED);
    ck_assert_int_eq(watch_calls, 1);
    ck_assert_int_eq(watch_state, SRV_JOB_CANCELED);
    ck_assert_int_eq(n_persist, 0);
    ck_assert_uint_eq(T.n_queued, 0);
    ck_assert_ptr_nonnull(a->error);
    /* the listing finds it by the client's X-Request-ID */
    add(2, SRV_JOB_RECEIVING);
    srv_job *page[4];
    bool more;
    ck_assert_uint_eq(srv_jobs_page(&T, -1, "client-42", NULL, 4, page, &more), 1);
    ck_assert_ptr_eq(page[0], a);
    ck_assert_uint_eq(srv_jobs_page(&T, SRV_JOB_RECEIVING, NULL, NULL, 4, page, &more), 1);
    ck_assert_uint_eq(srv_jobs_page(&T, -1, "nobody", NULL, 4, page, &more), 0);
}
END_TEST

/* A validating job's worker owns the decode: DELETE only raises the flag;
 * accept makes it queued with what the worker built; a refusal forgets it
 * (404, no hooks) while a holder's reference keeps it alive. */
START_TEST(validating_cancel_accept_and_forget)
{
    srv_job *a = add(1, SRV_JOB_RECEIVING);
    ck_assert(srv_jobs_event(&T, a, SRV_EV_RECEIVED, 0));
    ck_assert_int_eq(a->state, SRV_JOB_VALIDATING);
    srv_jobs_delete(&T, a, 10);
    ck_assert_int_eq(a->state, SRV_JOB_VALIDATING);
    ck_assert_int_eq(atomic_load(&a->cancel), SRV_CANCEL_CLIENT);
    json_t *o = srv_job_json(a, "");
    ck_assert(json_is_true(json_object_get(o, "cancel_requested")));
    json_decref(o);
    /* the worker's job hands over its fields */
    srv_job *built = srv_job_new(a->id, SRV_JOB_QUEUED);
    built->filename = strdup("x.npz");
    built->format = ADX_FMT_NPZ;
    built->mem_bytes = 1234;
    built->dataset = strdup("ds");
    built->pinned = true;
    srv_job_adopt(a, built);
    ck_assert_str_eq(a->filename, "x.npz");
    ck_assert_int_eq(a->format, ADX_FMT_NPZ);
    ck_assert_uint_eq(a->mem_bytes, 1234);
    ck_assert(a->pinned);
    ck_assert(srv_jobs_event(&T, a, SRV_EV_ACCEPT, 20));
    ck_assert_int_eq(a->state, SRV_JOB_QUEUED);
    /* a refused one leaves the table at once; the holder frees it */
    srv_job *b = add(2, SRV_JOB_RECEIVING);
    srv_job_ref(b);
    srv_jobs_forget(&T, b);
    ck_assert_ptr_null(srv_jobs_find(&T, "01J00000000000000000000002"));
    ck_assert_ptr_eq(T.head, a);
    ck_assert_int_eq(n_remove, 0);
    ck_assert(b->removed);
    srv_job_unref(b);
    /* forgetting is for jobs that were never accepted */
    srv_jobs_forget(&T, a);
    ck_assert_ptr_eq(srv_jobs_find(&T, a->id), a);
}
END_TEST

START_TEST(job_json_links)
{
    srv_job *a = add(1, SRV_JOB_QUEUED);
    a->filename = strdup("x.h5ad");
    json_t *o = srv_job_json(a, "https://h/p");
    ck_assert_str_eq(json_string_value(json_object_get(o, "state")), "queued");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "links"), "file")),
                     "https://h/p/v1/exports/01J00000000000000000000001/file");
    ck_assert(json_is_null(json_object_get(o, "sha256")));
    json_decref(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srv_jobs");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fifo_and_counters);
    tcase_add_test(tc, memory_admission);
    tcase_add_test(tc, memory_admission_lone_job_runs);
    tcase_add_test(tc, memory_estimate);
    tcase_add_test(tc, expiry);
    tcase_add_test(tc, paging);
    tcase_add_test(tc, cancel_queued_calls_watchers);
    tcase_add_test(tc, cancel_running_sets_flag);
    tcase_add_test(tc, job_json_links);
    tcase_add_test(tc, cancel_receiving_tells_the_upload);
    tcase_add_test(tc, validating_cancel_accept_and_forget);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
