/* Templates shared by every parser through MySQL, so that parsers on any number of hosts give an
 * event type one id. The `templates` table (db_schema.c, migration 2) holds each template's id, text
 * and structure (miner.h), the id of the template a merged one now belongs to (canonical_id), and
 * the revision of its last change; `template_revs` hands out revisions one at a time.
 *
 * A worker syncs its miner before it mines a session (the changes other parsers made since its last
 * revision are restored into it, in revision order), and writes its own changes (templates born or
 * generalised, merges) in the transaction that loads the session, under a new revision; only after
 * that transaction commits does it mark them committed in its miner. The row lock on template_revs
 * makes writers of changes take turns, so revisions commit in their order and a reader that has seen
 * revision r has seen every change up to r.
 *
 * Every change is one a later change can only extend: a template's structure only generalises, and a
 * merge only joins ids, the template born first (the smaller born_rev) keeping its id, which is the
 * rule every miner applies too. So parsers that see the same changes end with the same templates,
 * and canonical_id always names the end of the chain: stored ids resolve with one join,
 * COALESCE(t.canonical_id, x.template_id). */
#ifndef LF_TEMPLATE_SHARE_H
#define LF_TEMPLATE_SHARE_H

#include <stdint.h>

#include "lf_buf.h"
#include "lf_mysql.h"
#include "miner.h"

/* Restores into m the changes to templates of log_type with a revision above *rev, and sets *rev to
 * the last one seen. 0, lf_mysql's negative code, or -ENOMEM. */
int lf_template_share_sync(lf_mysql *db, lf_miner *m, const char *log_type, uint64_t *rev);

/* Inside the caller's transaction: when m has changes not yet committed, takes the next revision
 * and writes them under it (*rev gets it; 0 when there was nothing to write). The caller commits its
 * transaction, then calls lf_miner_commit(m, *rev). scratch is reused. 0 or a negative code. */
int lf_template_share_write(lf_mysql *db, lf_miner *m, const char *log_type, lf_buf *scratch, uint64_t *rev);

#endif
