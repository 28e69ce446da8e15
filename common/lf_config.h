/* Declarative configuration (Redis's config table, Fluent Bit's config maps).
 *
 * Each program describes its configuration once, as a table of options: section, name, type,
 * default, limits, flags and a description. The same table drives parsing the INI file (inih),
 * validation, --dump-config, SIGHUP reloads and the generated docs/configuration.md.
 *
 *   static const lf_config_option receiver_options[] = {
 *       {"http", "listen", LF_CFG_STRING, "127.0.0.1:8440", offsetof(struct receiver_config, listen),
 *        .description = "Address and port of the HTTP API."},
 *       {"http", "max_connections", LF_CFG_UINT, "1024", offsetof(struct receiver_config, max_conns),
 *        .min = 1, .max = 1000000, .flags = LF_CFG_RELOADABLE, .description = "..."},
 *       ...
 *   };
 *
 * Repeated sections ([watch.NAME], [check.NAME]) are described by an lf_config_section_table: each
 * section whose name starts with "prefix." becomes one element of a dynamic array in the target.
 *
 * Errors name the file, the line and the key: "/etc/logferry/receiver.conf:12: [http] listen: ...".
 * Unknown sections and keys are errors, so a typo is never silently ignored.
 */
#ifndef LF_CONFIG_H
#define LF_CONFIG_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lf_buf.h"

enum lf_config_type {
    LF_CFG_STRING,   /* char *, owned by the target; NULL when default is NULL */
    LF_CFG_INT,      /* int64_t, within [min, max] */
    LF_CFG_UINT,     /* uint64_t, within [min, max] */
    LF_CFG_BOOL,     /* bool: true/false/yes/no/on/off/1/0 */
    LF_CFG_DOUBLE,   /* double */
    LF_CFG_SIZE,     /* uint64_t bytes: "512", "64K", "16MiB", "2G" (powers of 1024) */
    LF_CFG_DURATION, /* uint64_t milliseconds: "250ms", "30s", "5m", "2h", "7d"; a bare number is s */
    LF_CFG_ENUM,     /* int: index into enum_values */
    LF_CFG_LIST,     /* char ** NULL-terminated, from a comma-separated value; owned by the target */
};

enum lf_config_flags {
    LF_CFG_RELOADABLE = 1, /* SIGHUP applies a change; otherwise a change needs a restart */
    LF_CFG_SECRET = 2,     /* --dump-config prints "(secret)" instead of the value */
    LF_CFG_REQUIRED = 4,   /* must be set in the file; the default is only documentation */
};

typedef struct lf_config_option {
    const char *section; /* "" for keys before any section header */
    const char *name;
    enum lf_config_type type;
    const char *default_value; /* text, parsed like a value from the file; NULL = unset */
    size_t offset;             /* offsetof the field in the target struct */
    double min, max;           /* numeric limits when min < max */
    const char *const *enum_values; /* NULL-terminated, for LF_CFG_ENUM */
    unsigned flags;
    const char *description;
    /* Optional extra validation: 0, or a negative code with a message in err. */
    int (*validate)(const void *field, lf_buf *err);
} lf_config_option;

typedef struct lf_config_section_table {
    const char *prefix; /* "watch": matches [watch.NAME] */
    const lf_config_option *options;
    size_t n_options;
    size_t element_size;  /* size of one element struct */
    size_t name_offset;   /* offsetof a char * in the element that receives NAME */
    size_t array_offset;  /* offsetof a void * (element array) in the target */
    size_t count_offset;  /* offsetof a size_t (element count) in the target */
    size_t max_count;
    const char *description;
} lf_config_section_table;

/* Free-form repeated sections (e.g. the parser's [logtype.NAME], read again by its own loader): an
 * option named "*" of type LF_CFG_LIST in a section table takes every key that is not one of the
 * table's options. Such keys may repeat; they are kept in file order as key, value, key, value... in
 * that list field, dumped back as they were, and checked by the option's validate hook, which then
 * receives a const char *const pair[2] = {key, value} instead of the field. */
#define LF_CFG_ANY_KEY "*"

typedef struct lf_config_table {
    const char *program; /* "logferry-receiver" */
    const char *default_path; /* "/etc/logferry/receiver.conf" */
    const lf_config_option *options;
    size_t n_options;
    const lf_config_section_table *sections;
    size_t n_sections;
    size_t target_size;
    const char *description;
} lf_config_table;

/* Sets every option to its default. The target must be zeroed first. 0 or negative code. */
LF_MUST_CHECK int lf_config_defaults(const lf_config_table *t, void *target, lf_buf *err);
/* Defaults, then the file at path. On error, err holds "path:line: [section] key: reason" and the
 * target holds what was parsed so far (free it with lf_config_free). */
LF_MUST_CHECK int lf_config_load(const lf_config_table *t, void *target, const char *path, lf_buf *err);
/* Same from a string (tests, fuzzing); name is used in messages. */
LF_MUST_CHECK int lf_config_load_string(const lf_config_table *t, void *target, const char *text, const char *name,
                          lf_buf *err);
/* Applies one override to a loaded target ("--set: [section] key: reason" on error, the field then
 * unchanged). A [prefix.NAME] section that does not exist yet is created with its defaults; REQUIRED
 * options are not checked here (lf_config_load_overrides does). */
LF_MUST_CHECK int lf_config_set(const lf_config_table *t, void *target, const char *section, const char *key,
                  const char *value, lf_buf *err);
/* Frees strings and lists and repeated-section arrays owned by the target. */
void lf_config_free(const lf_config_table *t, void *target);

/* Prints the effective configuration as a loadable INI file, secrets masked: a set secret is written
 * as "(secret)", a value the loader refuses for a SECRET option, so a dump with secrets cannot be
 * loaded by mistake with the placeholder. Unset (NULL) strings and lists are written as comments.
 * Values that INI cannot carry as-is are double-quoted with C-like escapes (\" \\ \n \t \xHH). */
LF_MUST_CHECK int lf_config_dump(const lf_config_table *t, const void *target, FILE *out);

/* Reload: loads path into a fresh target, compares with current. Options flagged RELOADABLE that
 * changed are copied into current; options that changed but are not reloadable are listed in
 * needs_restart ("[http] listen, [store] path") and keep their current value. 0 or negative code (in
 * which case current is unchanged). The previous value of a reloaded string or list is freed: code
 * must read such options from the target again after a reload rather than keep pointers to them. */
LF_MUST_CHECK int lf_config_reload(const lf_config_table *t, void *current, const char *path, lf_buf *needs_restart,
                     lf_buf *err);

/* The same with command-line overrides ("section.key=value", e.g. from --set) applied after the
 * file and before the REQUIRED check, so --set can supply a required option. path NULL: defaults
 * and overrides only. A section name may contain dots: the key is what follows the last dot. */
LF_MUST_CHECK int lf_config_load_overrides(const lf_config_table *t, void *target, const char *path,
                             const char *const *overrides, size_t n_overrides, lf_buf *err);
/* Reload with the same overrides re-applied (so a SIGHUP keeps --set values); changed (may be NULL)
 * receives the reloadable options that were applied, like needs_restart. A changed repeated section
 * counts as one option "[watch.*]": reloadable when the same elements remain (same names, same order)
 * and only RELOADABLE options of theirs changed, else it needs a restart. */
LF_MUST_CHECK int lf_config_reload_overrides(const lf_config_table *t, void *current, const char *path,
                               const char *const *overrides, size_t n_overrides, lf_buf *changed,
                               lf_buf *needs_restart, lf_buf *err);

/* Looks up an option of the top-level table by section and key; NULL when there is none. */
const lf_config_option *lf_config_find(const lf_config_table *t, const char *section, const char *key);
/* The value of a field as the dump writes it (secrets masked, NULL strings as ""), into out. */
LF_MUST_CHECK int lf_config_format_value(const lf_config_option *o, const void *target, lf_buf *out);

/* The first line of path that sets [section] key; when none does, where it would be set: its
 * commented-out line ("# key = ...", as --dump-config writes unset keys), else the section's header;
 * 0 when the file has neither or cannot be read. */
int lf_config_locate(const char *path, const char *section, const char *key);

/* True when option i of the table is the first of its section (the references list sections in the
 * order of their first option). */
bool lf_config_section_first(const lf_config_table *t, size_t i);

/* Writes the Markdown reference for the tables (docs/configuration.md). */
LF_MUST_CHECK int lf_config_write_markdown(const lf_config_table *const *tables, size_t n, FILE *out);

/* Value parsers, shared with command-line parsing. 0 or -EINVAL / -ERANGE. */
LF_MUST_CHECK int lf_config_parse_size(const char *text, uint64_t *bytes);
LF_MUST_CHECK int lf_config_parse_duration(const char *text, uint64_t *ms);
LF_MUST_CHECK int lf_config_parse_bool(const char *text, bool *value);

/* Writes the manual page logferry.conf(5) for the tables (troff), and the escaping it uses for
 * text (backslash, hyphen, a leading dot or quote). 0 or negative code. */
LF_MUST_CHECK int lf_config_write_man(const lf_config_table *const *tables, size_t n, FILE *out);
LF_MUST_CHECK int lf_config_man_escape(lf_buf *b, const char *s);

#endif
