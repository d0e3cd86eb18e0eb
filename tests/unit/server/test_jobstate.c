/* Unit tests for the job state machine: every allowed transition and every
 * refused one. */
#include <check.h>
#include <stdlib.h>

#include "adx_srv_job.h"

START_TEST(allowed_transitions)
{
    ck_assert_int_eq(srv_job_next(SRV_JOB_QUEUED, SRV_EV_START), SRV_JOB_RUNNING);
    ck_assert_int_eq(srv_job_next(SRV_JOB_QUEUED, SRV_EV_CANCEL), SRV_JOB_CANCELED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RUNNING, SRV_EV_SUCCEED), SRV_JOB_SUCCEEDED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RUNNING, SRV_EV_FAIL), SRV_JOB_FAILED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RUNNING, SRV_EV_CANCEL), SRV_JOB_CANCELED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RUNNING, SRV_EV_INTERRUPT), SRV_JOB_QUEUED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_SUCCEEDED, SRV_EV_EXPIRE), SRV_JOB_EXPIRED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RECEIVING, SRV_EV_RECEIVED), SRV_JOB_VALIDATING);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RECEIVING, SRV_EV_CANCEL), SRV_JOB_CANCELED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_VALIDATING, SRV_EV_ACCEPT), SRV_JOB_QUEUED);
    ck_assert_int_eq(srv_job_next(SRV_JOB_VALIDATING, SRV_EV_CANCEL), SRV_JOB_CANCELED);
}
END_TEST

START_TEST(refused_transitions)
{
    /* exactly the 11 pairs above are allowed */
    int allowed = 0;
    for (int s = 0; s < SRV_JOB__COUNT; s++)
        for (int e = SRV_EV_START; e <= SRV_EV_ACCEPT; e++)
            if (srv_job_next((srv_job_state)s, (srv_job_event)e) >= 0) allowed++;
    ck_assert_int_eq(allowed, 11);
    /* an upload becomes queued only through validation, never starts early */
    ck_assert_int_eq(srv_job_next(SRV_JOB_RECEIVING, SRV_EV_ACCEPT), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_RECEIVING, SRV_EV_START), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_VALIDATING, SRV_EV_START), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_QUEUED, SRV_EV_ACCEPT), -1);
    /* a late completion cannot resurrect a canceled or expired job */
    ck_assert_int_eq(srv_job_next(SRV_JOB_CANCELED, SRV_EV_SUCCEED), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_EXPIRED, SRV_EV_START), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_QUEUED, SRV_EV_SUCCEED), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_FAILED, SRV_EV_EXPIRE), -1);
    ck_assert_int_eq(srv_job_next(SRV_JOB_SUCCEEDED, SRV_EV_CANCEL), -1);
}
END_TEST

START_TEST(names_round_trip)
{
    for (int s = 0; s < SRV_JOB__COUNT; s++)
        ck_assert_int_eq(srv_job_state_parse(srv_job_state_name((srv_job_state)s)), s);
    ck_assert_str_eq(srv_job_state_name(SRV_JOB_SUCCEEDED), "succeeded");
    ck_assert_int_eq(srv_job_state_parse("Succeeded"), -1);
    ck_assert_int_eq(srv_job_state_parse(""), -1);
    ck_assert_int_eq(srv_job_state_parse(NULL), -1);
    ck_assert(srv_job_terminal(SRV_JOB_FAILED));
    ck_assert(!srv_job_terminal(SRV_JOB_RUNNING));
    ck_assert(!srv_job_terminal(SRV_JOB_RECEIVING));
    ck_assert(!srv_job_terminal(SRV_JOB_VALIDATING));
    ck_assert(srv_job_terminal(SRV_JOB_EXPIRED));
    ck_assert_str_eq(srv_job_state_name(SRV_JOB_RECEIVING), "receiving");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srv_job");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, allowed_transitions);
    tcase_add_test(tc, refused_transitions);
    tcase_add_test(tc, names_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
