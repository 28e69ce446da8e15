/* One session parsed into rows, ready for the MySQL and Elasticsearch loaders: the session's
 * manifest, its events (every string kept in one arena, events refer to it by offset) and the
 * templates it used with their counts. Built by lf_psession_parse from the log's bytes with an
 * engine; the loaders only read it.
 *
 * An event is one line the type's format accepts (or any line when continuation is off) plus the
 * continuation lines that follow it. Its message is the raw text: the line, then "\n" and each
 * continuation line (CRLF already reduced to LF, over-long lines cut at the type's max_line).
 * fields is a JSON object of the format's fields, params a JSON array of the template's parameters
 * as they appear in the content; component is the field named Component (any case) if there is one. */
#ifndef LF_PARSED_SESSION_H
#define LF_PARSED_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event_json.h"
#include "lf_manifest.h"

typedef struct lf_pstr {
    size_t off; /* in the arena */
    size_t len;
} lf_pstr;

typedef struct lf_pevent {
    uint32_t line; /* 1-based number of its first line */
    bool has_ts, has_level, has_component;
    int slot; /* in the engine's batch until the batch is mined */
    int64_t ts_us;
    uint64_t template_id;
    lf_pstr level, component, params, fields, message;
    lf_pstr content; /* the mined message: inside message, or a decoded copy (JSON lines) */
} lf_pevent;

typedef struct lf_ptemplate {
    uint64_t id;
    uint32_t count;
    int64_t first_us, last_us; /* event times (INT64_MIN when no event had one) */
    lf_pstr text;
} lf_ptemplate;

typedef struct lf_psession {
    lf_manifest manifest; /* owned */
    int64_t received_ms;  /* when the receiver queued it (0: unknown) */
    uint64_t log_bytes;
    uint32_t line_count, warning_count, error_count;
    bool crashed; /* the type has end_line and the last event does not match it */
    int64_t first_us, last_us; /* min/max event time, INT64_MIN when none */
    lf_pevent *events;
    size_t n_events, cap_events;
    lf_ptemplate *templates;
    size_t n_templates, cap_templates;
    size_t *tpl_index; /* open addressing over templates, size tpl_slots */
    size_t tpl_slots;
    lf_jw arena; /* fd -1: grows, never flushed */
    size_t n_resolved; /* events whose template and params are filled in */
} lf_psession;

/* 0 or -ENOMEM. The manifest is initialised empty; the caller may replace it (lf_manifest_free
 * first) before or after parsing. */
int lf_psession_init(lf_psession *ps);
void lf_psession_free(lf_psession *ps);

/* Parses the log read from fd (from its current offset) with eng, appending to ps. The session is
 * mined as one batch (or in slices of the miner's max_batch distinct messages), so each event's
 * template is decided knowing the whole session. 0, -errno (read), -ENOMEM, or LF_ELIMIT past
 * max_events events (0: no limit). */
int lf_psession_parse(lf_psession *ps, lf_engine *eng, int fd, size_t max_events);

static inline const char *lf_psession_str(const lf_psession *ps, lf_pstr s)
{
    return ps->arena.buf + s.off;
}

/* "YYYY-MM-DD HH:MM:SS.mmm" (UTC) for DATETIME(3) columns; out needs 32 bytes. Returns the length. */
size_t lf_psession_datetime(int64_t us, char *out);

/* true for levels counted as warnings / errors (case-insensitive: WARN, WARNING / ERROR, ERR,
 * FATAL, CRITICAL, SEVERE, CRIT, EMERG, ALERT, PANIC). */
bool lf_psession_level_is_warning(const char *s, size_t n);
bool lf_psession_level_is_error(const char *s, size_t n);

#endif
