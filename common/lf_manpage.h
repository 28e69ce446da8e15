/* The manual page of a program (`PROGRAM --man`), written from its lf_service_def: the same
 * summary, commands and configuration table as --help and docs/configuration.md, so the page cannot
 * drift from the program. docs/man/ holds the generated pages; scripts/test.sh checks they match. */
#ifndef LF_MANPAGE_H
#define LF_MANPAGE_H

#include "lf_error.h"

#include <stdio.h>

#include "lf_service.h"

LF_MUST_CHECK int lf_manpage_program(const lf_service_def *def, FILE *out);

#endif
