/* Unit tests of adx_afile: a commit leaves exactly the target, an abort or a
 * failure leaves nothing, the sha256 is the file's, errors reach the caller
 * without a path in the client detail. Faults the file system does not
 * produce on demand (EIO, ENOSPC) are injected by tests/fault. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit_tmp.h"
#include "adx_afile.h"

static char dir[256];

/* fsync as seen from afile: this definition in the executable takes the
 * place of libc's, so the tests count what each commit mode syncs. The
 * other tests only lose durability of their temp files, not behaviour. */
static int file_syncs, dir_syncs;

int fsync(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode))
        dir_syncs++;
    else
        file_syncs++;
    return 0;
}

int fdatasync(int fd)
{
    return fsync(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/adx-afile-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    rm_tree(dir);
}

/* Names in `d` other than . and .., joined with ',' in readdir order. */
static int entries(const char *d, char *out, size_t cap)
{
    DIR *dd = opendir(d);
    ck_assert_ptr_nonnull(dd);
    int n = 0;
    out[0] = '\0';
    struct dirent *de;
    while ((de = readdir(dd))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n++) strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, de->d_name, cap - strlen(out) - 1);
    }
    closedir(dd);
    return n;
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static const char *ABC_SHA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

START_TEST(commit_leaves_exactly_the_file)
{
    char target[512], names[1024];
    snprintf(target, sizeof target, "%s/out.bin", dir);
    adx_err e;
    adx_err_init(&e);
    afile_opts o = {.mode = 0640, .sha256 = true};
    afile *f = afile_begin(target, &o, &e);
    ck_assert_ptr_nonnull(f);
    /* While writing, only the hidden temp file exists. */
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
    ck_assert_msg(names[0] == '.' && strstr(names, "out.bin."), "temp named %s", names);
    ck_assert_int_eq(access(target, F_OK), -1);
    ck_assert_int_eq(afile_write(f, "ab", 2, &e), 0);
    ck_assert_int_eq(afile_write(f, "c", 1, &e), 0);
    afile_result r;
    ck_assert_int_eq(afile_commit(f, &r, &e), 0);
    ck_assert(!adx_err_failed(&e));
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
    ck_assert_str_eq(names, "out.bin");
    size_t n;
    char *got = slurp(target, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert(!memcmp(got, "abc", 3));
    free(got);
    ck_assert_uint_eq(r.size, 3);
    ck_assert_str_eq(r.sha256, ABC_SHA);
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
}
END_TEST

START_TEST(commit_replaces_an_old_target)
{
    char target[512], names[1024];
    snprintf(target, sizeof target, "%s/t.txt", dir);
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(afile_write_file(target, "old content", 11, 0600, &e), 0);
    ck_assert_int_eq(afile_write_file(target, "new", 3, 0644, &e), 0);
    size_t n;
    char *got = slurp(target, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert(!memcmp(got, "new", 3));
    free(got);
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
}
END_TEST

START_TEST(abort_leaves_nothing)
{
    char target[512], names[1024];
    snprintf(target, sizeof target, "%s/gone.npz", dir);
    adx_err e;
    adx_err_init(&e);
    afile *f = afile_begin(target, NULL, &e);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(afile_write(f, "partial", 7, &e), 0);
    afile_abort(f);
    afile_abort(NULL);
    ck_assert_int_eq(entries(dir, names, sizeof names), 0);
}
END_TEST

START_TEST(sha256_after_seeking_back_and_by_name)
{
    char target[512];
    snprintf(target, sizeof target, "%s/z", dir);
    adx_err e;
    adx_err_init(&e);
    afile_opts o = {.sha256 = true};
    /* A header patched after the body, as libzip does. */
    afile *f = afile_begin(target, &o, &e);
    ck_assert_int_eq(afile_write(f, "xbc", 3, &e), 0);
    ck_assert_int_eq(afile_pwrite(f, "a", 1, 0, &e), 0);
    afile_result r;
    ck_assert_int_eq(afile_commit(f, &r, &e), 0);
    ck_assert_str_eq(r.sha256, ABC_SHA);
    ck_assert_uint_eq(r.size, 3);
    /* A library that recreates the file it was given by name. */
    f = afile_begin(target, &o, &e);
    const char *tmp = afile_temp_path(f);
    ck_assert_int_eq(unlink(tmp), 0);
    FILE *w = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(w);
    fputs("abc", w);
    fclose(w);
    ck_assert_int_eq(afile_commit(f, &r, &e), 0);
    ck_assert_str_eq(r.sha256, ABC_SHA);
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    /* Empty input: the sha256 of nothing. */
    f = afile_begin(target, &o, &e);
    ck_assert_int_eq(afile_commit(f, &r, &e), 0);
    ck_assert_str_eq(r.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_uint_eq(r.size, 0);
    ck_assert(!adx_err_failed(&e));
}
END_TEST

START_TEST(take_and_copy_in)
{
    char src[512], target[512], names[1024];
    snprintf(src, sizeof src, "%s/upload", dir);
    snprintf(target, sizeof target, "%s/stored", dir);
    adx_err e;
    adx_err_init(&e);
    ck_assert_int_eq(afile_write_file(src, "abc", 3, 0600, &e), 0);
    afile_opts o = {.mode = 0640, .sha256 = true, .tmp_prefix = ".put-"};
    afile *f = afile_begin(target, &o, &e);
    ck_assert_int_eq(entries(dir, names, sizeof names), 2);
    ck_assert_msg(strstr(names, ".put-stored."), "%s", names);
    ck_assert_int_eq(afile_take(f, src, &e), 0);
    afile_result r;
    ck_assert_int_eq(afile_commit(f, &r, &e), 0);
    ck_assert_str_eq(r.sha256, ABC_SHA);
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
    ck_assert_str_eq(names, "stored");
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);

    /* copy_in from an fd, and copy_fd between fds. */
    int in = open(target, O_RDONLY);
    f = afile_begin(src, &o, &e);
    ck_assert_int_eq(afile_copy_in(f, in, &e), 0);
    close(in);
    ck_assert_int_eq(afile_commit(f, &r, &e), 0);
    ck_assert_str_eq(r.sha256, ABC_SHA);
    in = open(src, O_RDONLY);
    char copy[512];
    snprintf(copy, sizeof copy, "%s/copy", dir);
    int out = open(copy, O_WRONLY | O_CREAT, 0600);
    uint64_t copied = 0;
    ck_assert_int_eq(afile_copy_fd(in, out, &copied), 0);
    ck_assert_uint_eq(copied, 3);
    close(in);
    close(out);
    ck_assert(!adx_err_failed(&e));
}
END_TEST

START_TEST(errors_propagate_without_paths)
{
    char target[512], names[1024];
    adx_err e;
    adx_err_init(&e);
    /* No such directory: begin fails. */
    snprintf(target, sizeof target, "%s/missing/x.h5ad", dir);
    ck_assert_ptr_null(afile_begin(target, NULL, &e));
    ck_assert_int_eq(e.type, ADX_E_IO);
    ck_assert_ptr_null(strstr(e.detail, dir));
    ck_assert_ptr_nonnull(strstr(e.detail, "temporary file"));

    /* The target is a non-empty folder: the rename fails at commit, and the
     * temp file goes; the folder stays as it was. */
    adx_err_init(&e);
    snprintf(target, sizeof target, "%s/busy", dir);
    ck_assert_int_eq(mkdir(target, 0700), 0);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep", target);
    ck_assert_int_eq(afile_write_file(inner, "k", 1, 0600, &e), 0);
    afile *f = afile_begin(target, NULL, &e);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(afile_write(f, "abc", 3, &e), 0);
    ck_assert_int_eq(afile_commit(f, NULL, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_IO);
    ck_assert_ptr_nonnull(strstr(e.detail, "cannot move the file into place"));
    ck_assert_ptr_null(strstr(e.detail, dir));
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
    ck_assert_str_eq(names, "busy");
    ck_assert_int_eq(access(inner, F_OK), 0);

    /* A write on a file opened read-only fails (EBADF) and says so. */
    adx_err_init(&e);
    snprintf(target, sizeof target, "%s/w", dir);
    f = afile_begin(target, NULL, &e);
    int fd = afile_fd(f);
    int ro = open(afile_temp_path(f), O_RDONLY);
    ck_assert_int_eq(dup2(ro, fd), fd);
    close(ro);
    ck_assert_int_eq(afile_write(f, "x", 1, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_IO);
    ck_assert_ptr_nonnull(strstr(e.detail, "cannot write the file"));
    afile_abort(f);
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);

    /* A rename of something missing is -1 with ENOENT, nothing else. */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/nothing", dir);
    snprintf(b, sizeof b, "%s/else", dir);
    errno = 0;
    ck_assert_int_eq(afile_rename(a, b), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(rename_and_remove_tree)
{
    char a[512], b[512], names[1024];
    adx_err e;
    adx_err_init(&e);
    snprintf(a, sizeof a, "%s/t", dir);
    ck_assert_int_eq(mkdir(a, 0700), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/sub", a);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/sub/f", a);
    ck_assert_int_eq(afile_write_file(p, "1", 1, 0600, &e), 0);
    /* A symlink to a file outside the tree: removed, never followed. */
    char outside[512];
    snprintf(outside, sizeof outside, "%s/outside", dir);
    ck_assert_int_eq(afile_write_file(outside, "o", 1, 0600, &e), 0);
    snprintf(p, sizeof p, "%s/link", a);
    ck_assert_int_eq(symlink(outside, p), 0);
    snprintf(b, sizeof b, "%s/u", dir);
    ck_assert_int_eq(afile_rename(a, b), 0);
    ck_assert_int_eq(access(a, F_OK), -1);
    ck_assert_int_eq(afile_remove_tree(b), 0);
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
    ck_assert_str_eq(names, "outside");
    /* Missing is fine. */
    ck_assert_int_eq(afile_remove_tree(b), 0);
    snprintf(p, sizeof p, "%s/no/such/thing", dir);
    ck_assert_int_eq(afile_remove_tree(p), 0);
}
END_TEST

START_TEST(weaker_commits_sync_less)
{
    static const struct {
        afile_sync mode;
        int files, dirs;
    } want[] = {{AFILE_SYNC_ALL, 1, 1}, {AFILE_SYNC_FILE, 1, 0}, {AFILE_SYNC_NONE, 0, 0}};
    char p[512], names[1024];
    size_t len;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        adx_err e;
        adx_err_init(&e);
        snprintf(p, sizeof p, "%s/rec.json", dir);
        file_syncs = dir_syncs = 0;
        char text[32];
        snprintf(text, sizeof text, "{\"v\":%zu}", i);
        ck_assert_int_eq(afile_write_file_sync(p, text, strlen(text), 0640, want[i].mode, &e), 0);
        ck_assert_int_eq(file_syncs, want[i].files);
        ck_assert_int_eq(dir_syncs, want[i].dirs);
        /* Whatever the mode, the file is whole and alone. */
        char *got = slurp(p, &len);
        ck_assert_uint_eq(len, strlen(text));
        ck_assert_mem_eq(got, text, len);
        free(got);
        ck_assert_int_eq(entries(dir, names, sizeof names), 1);
        ck_assert_str_eq(names, "rec.json");
    }
    /* afile_rename syncs both directories. */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/rec.json", dir);
    snprintf(b, sizeof b, "%s/sub", dir);
    ck_assert_int_eq(mkdir(b, 0700), 0);
    snprintf(b, sizeof b, "%s/sub/rec.json", dir);
    ck_assert_int_eq(rename(a, b), 0);
    file_syncs = dir_syncs = 0;
    ck_assert_int_eq(afile_rename(b, a), 0);
    ck_assert_int_eq(dir_syncs, 2);
    ck_assert_int_eq(access(a, F_OK), 0);
}
END_TEST

static ino_t inode_of(const char *p)
{
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_ino;
}

START_TEST(append_grows_one_file_in_place)
{
    char p[512], names[1024];
    size_t len;
    adx_err e;
    adx_err_init(&e);
    snprintf(p, sizeof p, "%s/job.json", dir);
    file_syncs = dir_syncs = 0;
    ck_assert_int_eq(afile_append(p, "{\"a\":1}\n", 8, 0640, AFILE_SYNC_ALL, &e), 0);
    ck_assert_int_eq(file_syncs, 1);
    ck_assert_int_eq(dir_syncs, 1);
    ino_t ino = inode_of(p);
    file_syncs = dir_syncs = 0;
    ck_assert_int_eq(afile_append(p, "{\"a\":2}\n", 8, 0640, AFILE_SYNC_FILE, &e), 0);
    ck_assert_int_eq(file_syncs, 1);
    ck_assert_int_eq(dir_syncs, 0);
    ck_assert_int_eq(afile_append(p, "{\"a\":3}\n", 8, 0640, AFILE_SYNC_NONE, &e), 0);
    ck_assert_int_eq(file_syncs, 1);
    /* the same inode, no temp file beside it */
    ck_assert_uint_eq(inode_of(p), ino);
    ck_assert_int_eq(entries(dir, names, sizeof names), 1);
    char *got = slurp(p, &len);
    ck_assert_uint_eq(len, 24);
    ck_assert_mem_eq(got, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", 24);
    free(got);
    /* an error names no path to the client */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing/job.json", dir);
    ck_assert_int_eq(afile_append(bad, "x\n", 2, 0640, AFILE_SYNC_FILE, &e), -1);
    ck_assert_int_eq(e.type, ADX_E_IO);
    ck_assert_ptr_null(strstr(e.detail, dir));
}
END_TEST

/* A write that stops half-way (here the file-size limit, as a full disk
 * would) is taken back: the log never keeps part of a record. */
START_TEST(a_short_append_is_taken_back)
{
    char p[512];
    size_t len;
    adx_err e;
    adx_err_init(&e);
    snprintf(p, sizeof p, "%s/job.json", dir);
    ck_assert_int_eq(afile_append(p, "{\"a\":1}\n", 8, 0640, AFILE_SYNC_FILE, &e), 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit was, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
    rl = was;
    rl.rlim_cur = 12; /* 4 of the 12 bytes fit */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    ck_assert_int_eq(afile_append(p, "{\"a\":2222}\n", 12, 0640, AFILE_SYNC_FILE, &e), -1);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
    ck_assert_int_eq(e.type, ADX_E_IO);
    char *got = slurp(p, &len);
    ck_assert_uint_eq(len, 8);
    ck_assert_mem_eq(got, "{\"a\":1}\n", 8);
    free(got);
}
END_TEST

START_TEST(read_small_whole_or_refused)
{
    char p[512];
    adx_err e;
    adx_err_init(&e);
    snprintf(p, sizeof p, "%s/rec", dir);
    size_t len = 99;
    ck_assert_int_eq(afile_write_file(p, "", 0, 0600, &e), 0);
    char *b = afile_read_small(p, 10, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(b, "");
    free(b);
    ck_assert_int_eq(afile_write_file(p, "0123456789", 10, 0600, &e), 0);
    b = afile_read_small(p, 10, &len); /* exactly max */
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(b, "0123456789");
    free(b);
    errno = 0;
    ck_assert_ptr_null(afile_read_small(p, 9, &len));
    ck_assert_int_eq(errno, EFBIG);
    /* a file that grows past its size at open is read whole */
    ck_assert_int_eq(afile_append(p, "abcdefghij", 10, 0600, AFILE_SYNC_NONE, &e), 0);
    b = afile_read_small(p, 1000, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, 20);
    free(b);
    snprintf(p, sizeof p, "%s/none", dir);
    ck_assert_ptr_null(afile_read_small(p, 10, &len));
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("afile");
    TCase *t = tcase_create("afile");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, commit_leaves_exactly_the_file);
    tcase_add_test(t, commit_replaces_an_old_target);
    tcase_add_test(t, abort_leaves_nothing);
    tcase_add_test(t, sha256_after_seeking_back_and_by_name);
    tcase_add_test(t, take_and_copy_in);
    tcase_add_test(t, errors_propagate_without_paths);
    tcase_add_test(t, rename_and_remove_tree);
    tcase_add_test(t, weaker_commits_sync_less);
    tcase_add_test(t, append_grows_one_file_in_place);
    tcase_add_test(t, a_short_append_is_taken_back);
    tcase_add_test(t, read_small_whole_or_refused);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
