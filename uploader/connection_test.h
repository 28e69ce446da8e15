/* `logferry-uploader test`: checks the path to the receiver step by step (connection_test.c). */
#ifndef LF_UPLOADER_CONNECTION_TEST_H
#define LF_UPLOADER_CONNECTION_TEST_H

#include <stdio.h>

#include "uploader_config.h"

/* Prints one line per check to out. 0 when every check passed, 1 otherwise. */
int lf_uploader_connection_test(const struct lf_uploader_config *cfg, FILE *out);

#endif
