/* lf_preflight and lf_config_locate: every problem is kept with file, line, section and key; keys
 * not in the file are named without a line; directories and files are judged as the caller can use
 * them; URLs that do not parse are refused; lf_run_as changes nothing for a caller who is not root
 * or for a directory owned by root. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_config.h"
#include "lf_preflight.h"
#include "lf_run_as.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lf_preflight_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", tmpdir, tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void locate_finds_the_first_line_of_a_key_in_its_section(void **state)
{
    (void)state;
    char conf[300];
    path_in(conf, sizeof conf, "a.conf");
    write_text(conf, "; comment\n[http]\nlisten = 1\n\n[uploader]\n# site = commented\n  site  =  x\n"
                     "[watch.logs]\ndir=/a\n[uploader]\nsite = again\n# state_dir = /x\n");
    assert_int_equal(lf_config_locate(conf, "http", "listen"), 3);
    assert_int_equal(lf_config_locate(conf, "uploader", "site"), 7);
    assert_int_equal(lf_config_locate(conf, "watch.logs", "dir"), 9);
    /* not set: where it would be, its commented-out line or else its section's header */
    assert_int_equal(lf_config_locate(conf, "http", "site"), 2);
    assert_int_equal(lf_config_locate(conf, "uploader", "key_file"), 5);
    assert_int_equal(lf_config_locate(conf, "watch.logs", "include"), 8);
    assert_int_equal(lf_config_locate(conf, "uploader", "state_dir"), 12);
    assert_int_equal(lf_config_locate(conf, "monitor", "state_dir"), 0);  /* no such section */
    assert_int_equal(lf_config_locate("/nonexistent/x.conf", "http", "listen"), 0);
    /* a line longer than the reader's buffer counts as one line, and its tail is not a key */
    char longer[300];
    path_in(longer, sizeof longer, "long.conf");
    FILE *f = fopen(longer, "w");
    assert_non_null(f);
    fprintf(f, "[http]\n# ");
    for (int i = 0; i < 5000; i++)
        fputc('x', f);
    fprintf(f, " listen = not-a-key\nlisten = 1\n");
    assert_int_equal(fclose(f), 0);
    assert_int_equal(lf_config_locate(longer, "http", "listen"), 3);
}

static void problems_name_file_line_section_and_key(void **state)
{
    (void)state;
    char conf[300];
    path_in(conf, sizeof conf, "b.conf");
    write_text(conf, "[receiver]\nurl = ftp://x\n");
    lf_preflight pf;
    lf_preflight_init(&pf, conf);
    lf_preflight_url(&pf, "receiver", "url", "ftp://x");
    assert_false(lf_preflight_require(&pf, "uploader", "site", NULL, "uploads are signed in its name"));
    assert_false(lf_preflight_require(&pf, "uploader", "site", "", "uploads are signed in its name"));
    assert_true(lf_preflight_require(&pf, "uploader", "site", "a", "unused"));
    assert_int_equal(pf.n_problems, 3);
    char want[2048];
    snprintf(want, sizeof want,
             "%s:2: [receiver] url: the URL must start with http:// or https://\n"
             "%s: [uploader] site: not set; uploads are signed in its name\n"
             "%s: [uploader] site: not set; uploads are signed in its name\n", conf, conf, conf);
    assert_string_equal(lf_buf_cstr(&pf.problems), want);
    lf_preflight_free(&pf);

    /* on built-in defaults there is no file to name */
    lf_preflight_init(&pf, NULL);
    lf_preflight_url(&pf, "slack", "webhook_url", "http://");
    lf_preflight_url(&pf, "slack", "webhook_url", "https://hooks.example/x y");
    lf_preflight_url(&pf, "slack", "webhook_url", "https://hooks.example/services/T/B/x");
    lf_preflight_url(&pf, "slack", "webhook_url", NULL);
    assert_int_equal(pf.n_problems, 2);
    assert_string_equal(lf_buf_cstr(&pf.problems),
                        "[slack] webhook_url: the URL names no host\n"
                        "[slack] webhook_url: the URL holds a space, a control character or a non-ASCII byte\n");
    lf_preflight_free(&pf);
}

static void directories_and_files_are_judged_as_the_caller_can_use_them(void **state)
{
    (void)state;
    char dir[300], missing[300], deep[300], file[300], absent[300], notdir[300];
    path_in(dir, sizeof dir, "state");
    path_in(missing, sizeof missing, "state/new");
    path_in(deep, sizeof deep, "state/a/b/c");
    path_in(file, sizeof file, "state/key");
    path_in(absent, sizeof absent, "state/absent");
    path_in(notdir, sizeof notdir, "state/key/sub");
    assert_int_equal(mkdir(dir, 0700), 0);
    write_text(file, "k\n");

    lf_preflight pf;
    lf_preflight_init(&pf, NULL);
    lf_preflight_dir(&pf, "s", "existing", dir, true, false);
    lf_preflight_dir(&pf, "s", "creatable", missing, true, true);
    lf_preflight_dir(&pf, "s", "deep", deep, true, true);
    lf_preflight_file(&pf, "s", "file", file, false);
    lf_preflight_file(&pf, "s", "optional", absent, true);
    assert_int_equal(pf.n_problems, 0);

    lf_preflight_dir(&pf, "s", "missing", missing, true, false);
    lf_preflight_dir(&pf, "s", "file_as_dir", file, false, false);
    lf_preflight_file(&pf, "s", "dir_as_file", dir, false);
    lf_preflight_file(&pf, "s", "required", absent, false);
    lf_preflight_dir(&pf, "s", "under_a_file", notdir, true, true);
    assert_int_equal(pf.n_problems, 5);
    const char *text = lf_buf_cstr(&pf.problems);
    assert_non_null(strstr(text, "[s] missing: directory "));
    assert_non_null(strstr(text, "No such file or directory"));
    assert_non_null(strstr(text, "[s] file_as_dir: "));
    assert_non_null(strstr(text, "is not a directory"));
    assert_non_null(strstr(text, "[s] dir_as_file: "));
    assert_non_null(strstr(text, "is not a regular file"));
    assert_non_null(strstr(text, "[s] under_a_file: "));
    lf_preflight_free(&pf);

    if (geteuid() != 0) { /* root may write anywhere: only a plain user sees modes refuse */
        assert_int_equal(chmod(dir, 0500), 0);
        lf_preflight_init(&pf, NULL);
        lf_preflight_dir(&pf, "s", "read_only", dir, true, false);
        lf_preflight_dir(&pf, "s", "cannot_create", missing, true, true);
        assert_int_equal(pf.n_problems, 2);
        lf_preflight_free(&pf);
        assert_int_equal(chmod(dir, 0700), 0);
    }
}

static void run_as_changes_nothing_without_a_reason(void **state)
{
    (void)state;
    uid_t uid;
    gid_t gid;
    lf_buf err = LF_BUF_INIT(256);
    /* a missing directory, or one owned by root, or a caller who is not root: nothing to change */
    assert_false(lf_run_as_owner("/nonexistent/state", &uid, &gid));
    assert_false(lf_run_as_owner("/", &uid, &gid));
    assert_false(lf_run_as_owner(NULL, &uid, &gid));
    assert_int_equal(lf_run_as_switch("/", &err), 0);
    assert_int_equal(lf_run_as_switch("/nonexistent/state", &err), 0);
    char file[300];
    path_in(file, sizeof file, "owned");
    write_text(file, "x");
    struct stat before, after;
    assert_int_equal(stat(file, &before), 0);
    assert_int_equal(lf_run_as_chown(file, "/", &err), 0);
    assert_int_equal(stat(file, &after), 0);
    assert_int_equal(before.st_uid, after.st_uid);
    if (geteuid() == 0) {
        /* root and a directory owned by someone else: that owner is named */
        assert_int_equal(chown(tmpdir, 65534, 65534), 0);
        assert_true(lf_run_as_owner(tmpdir, &uid, &gid));
        assert_int_equal(uid, 65534);
        assert_int_equal(lf_run_as_chown(file, tmpdir, &err), 0);
        assert_int_equal(stat(file, &after), 0);
        assert_int_equal(after.st_uid, 65534);
        assert_int_equal(chown(tmpdir, 0, 0), 0);
    }
    lf_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(locate_finds_the_first_line_of_a_key_in_its_section),
        cmocka_unit_test(problems_name_file_line_section_and_key),
        cmocka_unit_test(directories_and_files_are_judged_as_the_caller_can_use_them),
        cmocka_unit_test(run_as_changes_nothing_without_a_reason),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
