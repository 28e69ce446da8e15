/* The analytics database's data dictionary: every table and column with its meaning, for analysts
 * (docs/bi.md is generated from it by `logferry-analytics dictionary`). */
#ifndef LF_ANALYTICS_DICTIONARY_H
#define LF_ANALYTICS_DICTIONARY_H

#include <stdio.h>

typedef struct lf_dictionary_column {
    const char *name, *type, *meaning;
} lf_dictionary_column;

typedef struct lf_dictionary_table {
    const char *name, *meaning;
    const lf_dictionary_column *columns; /* ends with a NULL name */
} lf_dictionary_table;

extern const lf_dictionary_table lf_analytics_dictionary[]; /* ends with a NULL name */

/* Writes the dictionary as Markdown (a section per table). 0 or -1 on a write error. */
int lf_analytics_dictionary_markdown(FILE *out);

#endif
