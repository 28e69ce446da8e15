/* The parsing engine: a compiled log type (line format or JSON lines, masks, timestamp, level) with
 * its template miner. Feed it lines; it returns events with fields, timestamp, level, content and
 * the template cluster. One engine per thread (it holds scratch buffers). */
#ifndef LF_ENGINE_H
#define LF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drain.h"
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
    lf_drain_cluster *cluster; /* valid until the next lf_engine_mine */
} lf_event;

typedef struct lf_engine lf_engine;

/* Compiles a type. cfg NULL: miner defaults. 0, LF_ECONFIG (err filled) or -ENOMEM. */
int lf_engine_new(const lf_logtype *type, const lf_drain_config *cfg, lf_engine **out, char *err, size_t errlen);
void lf_engine_free(lf_engine *e);

/* Splits a line (no terminator) into fields. Returns 1 when it fits the type, 0 when not (then the
 * event holds the whole line as content and no fields). Pointers in ev refer to line or to the
 * engine's scratch and stay valid until the next call. */
int lf_engine_split(lf_engine *e, const char *line, size_t len, lf_event *ev);
/* Mines the event's content and fills ts, level and cluster. 0 or -ENOMEM. */
int lf_engine_mine(lf_engine *e, lf_event *ev);

lf_drain *lf_engine_drain(lf_engine *e);
const lf_logtype *lf_engine_type(const lf_engine *e);
bool lf_engine_continuation(const lf_engine *e);

#endif
