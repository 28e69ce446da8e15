/* Templates kept in a file, for `logferry-parser parse --templates FILE`: a later run starts with the
 * templates, ids and aliases of the earlier ones. (The parser service keeps them in MySQL instead,
 * shared by every parser: loader_mysql.h.) A text file, written atomically (temporary file, fsync,
 * rename):
 *   logferry-templates 2 <log type>\n
 *   <id as 16 hex digits>\t<count>\t<structure>\n     (one per template, in creation order)
 *   alias\t<from id>\t<to id>\n                       (one per merge, in the order made)
 * where the structure is the template's tokens separated by single spaces, an empty token marking a
 * gap of varying length (miner.h). Version 1 files (id, count, template text) are read too. */
#ifndef LF_TEMPLATE_STORE_H
#define LF_TEMPLATE_STORE_H

#include "miner.h"

/* 0, -errno, or LF_EFORMAT / LF_ECORRUPT for a file that is not a template file of this type. A
 * missing file is -ENOENT (the caller usually starts empty). */
int lf_template_store_load(lf_miner *m, const char *path);
int lf_template_store_save(lf_miner *m, const char *path);

#endif
