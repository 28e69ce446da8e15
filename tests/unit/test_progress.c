/* lf_progress: a plain line every LF_PROGRESS_LINE_MS off a terminal, a redrawn line on one, rate
 * and time left from the caller's clock, an end line with the time taken; unknown totals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lf_progress.h"

static char *captured(FILE *f, char **buf)
{
    fflush(f);
    return *buf;
}

static void plain_lines_every_few_seconds(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lf_progress p;
    lf_progress_start(&p, f, false, "reparse", "", 1000, 0);
    for (int64_t t = 0; t <= 12000; t += 100)
        lf_progress_update(&p, (uint64_t)(t / 20), t); /* 50 a second */
    lf_progress_end(&p, 12000);
    assert_string_equal(captured(f, &buf), "reparse: 250 of 1000 (25%), 50/s, about 15s left\n"
                                           "reparse: 500 of 1000 (50%), 50/s, about 10s left\n"
                                           "reparse: 600 done in 12s\n");
    fclose(f);
    free(buf);
}

static void terminal_redraws_in_place(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lf_progress p;
    lf_progress_start(&p, f, true, "export", "B", 4 << 20, 0);
    lf_progress_update(&p, 1 << 20, 50);   /* too soon to redraw */
    lf_progress_update(&p, 2 << 20, 1000); /* 2M in 1 s */
    lf_progress_end(&p, 2000);
    const char *out = captured(f, &buf);
    assert_non_null(strstr(out, "\rexport     [##########..........]  50%  2.0M/4.0M  2.0M/s  ETA 1s\033[K"));
    assert_null(strstr(out, "1.0M/4.0M"));
    assert_non_null(strstr(out, "\r\033[Kexport: 2.0M done in 2s\n"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* one line, redrawn */
    fclose(f);
    free(buf);
}

static void unknown_total_shows_count_and_rate(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lf_progress p;
    lf_progress_start(&p, f, false, "scan", "", 0, 1000);
    lf_progress_update(&p, 7500, 6000);
    lf_progress_end(&p, 6400);
    assert_string_equal(captured(f, &buf), "scan: 7500 so far, 1500/s\nscan: 7500 done in 5s\n");
    fclose(f);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_lines_every_few_seconds),
        cmocka_unit_test(terminal_redraws_in_place),
        cmocka_unit_test(unknown_total_shows_count_and_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
