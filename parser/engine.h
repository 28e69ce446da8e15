/* The parsing engine: a compiled log type (line format or JSON lines, masks, timestamp, level) with
 * its template miner. Lines are split into events (fields, timestamp, level, content); the events'
 * contents are queued into the miner's batch, and once the batch is mined each event's slot gives
 * its template. One engine per thread (it holds scratch buffers). */
#ifndef LF_ENGINE_H
#define LF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "miner.h"
#include "template_params.h"
#include "logformat.h"
#include "logtype.h"

#define LF_EVENT_MAX_FIELDS 64

typedef struct lf_event {
    bool matched; /* the line fits the format (JSON lines: is a JSON object) */
    int nfields;
    const char *name[LF_EVENT_MAX_FIELDS];
    size_t name_len[LF_EVENT_MAX_FIELDS];
    const char *value[LF_EVENT_MAX_FIELDS];
    size_t value_len[LF_EVENT_MAX_FIELDS];
    const char *content; /* the message that was mined */
    size_t content_len;
    const char *level; /* NULL when the type has no level */
    size_t level_len;
    bool has_ts;
    int64_t ts_us;
    int slot; /* its place in the miner's batch (lf_engine_queue), -1 before */
} lf_event;

typedef struct lf_engine lf_engine;

/* Compiles a type. cfg NULL: miner defaults. 0, LF_ECONFIG (err filled) or -ENOMEM. */
int lf_engine_new(const lf_logtype *type, const lf_miner_config *cfg, lf_engine **out, char *err, size_t errlen);
void lf_engine_free(lf_engine *e);

/* Splits a line (no terminator) into fields. Returns 1 when it fits the type, 0 when not (then the
 * event holds the whole line as content and no fields). Pointers in ev refer to line or to the
 * engine's scratch and stay valid until the next call. */
int lf_engine_split(lf_engine *e, const char *line, size_t len, lf_event *ev);
/* Fields of a line format (0 for JSON lines). */
int lf_engine_field_count(const lf_engine *e);
/* Rebuilds the event of a line that lf_engine_split matched (not JSON lines), from its fields' places
 * in it (spans: lf_engine_field_count() of them, offsets into line): what lf_engine_split gave, for a
 * caller that kept the places instead of splitting the line again. ts and slot are not restored. */
void lf_engine_respan(const lf_engine *e, const char *line, size_t len, const lf_span *spans, lf_event *ev);

/* Fills the event's ts, tokenizes its content and adds it to the miner's batch (ev->slot). 0,
 * LF_ELIMIT when the batch is full (flush it, use its results, reset, and queue the event again) or
 * -ENOMEM. */
int lf_engine_queue(lf_engine *e, lf_event *ev);
/* Mines the batch: afterwards lf_engine_template() gives each queued slot's template. 0 or -ENOMEM. */
int lf_engine_flush(lf_engine *e);
/* The template of a slot of the flushed batch (valid until lf_engine_reset). */
lf_template *lf_engine_template(const lf_engine *e, int slot);
/* Starts a new batch (the templates stay). */
void lf_engine_reset(lf_engine *e);

lf_miner *lf_engine_miner(lf_engine *e);
/* How the log type's line format has matched the lines so far (logformat.h; zeros for JSON lines). */
void lf_engine_format_counts(const lf_engine *e, lf_logformat_counts *out);

/* The parameters of a message by its template (template_params.h), with the engine's cache of split
 * templates. */
int lf_engine_params(lf_engine *e, const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out,
                     int max);
const lf_logtype *lf_engine_type(const lf_engine *e);
bool lf_engine_continuation(const lf_engine *e);

#endif
