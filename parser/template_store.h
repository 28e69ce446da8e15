/* Persisted templates, so that a restarted parser keeps its clusters and so its template ids.
 * A text file, written atomically (temporary file, fsync, rename):
 *   logferry-templates 1 <log type>\n
 *   <id as 16 hex digits>\t<count>\t<template>\n     (one per cluster, in creation order)
 * Loading checks the header's type and that each id is the hash of its template. */
#ifndef LF_TEMPLATE_STORE_H
#define LF_TEMPLATE_STORE_H

#include "drain.h"

/* 0, -errno, or LF_EFORMAT / LF_ECORRUPT for a file that is not a template file of this type. A
 * missing file is -ENOENT (the caller usually starts empty). */
int lf_template_store_load(lf_drain *d, const char *path);
int lf_template_store_save(lf_drain *d, const char *path);

#endif
