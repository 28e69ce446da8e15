/* Fuzzes the configuration loader with arbitrary INI text. Beyond not crashing, every accepted input
 * must dump to text that loads again into the same dump (the --dump-config round trip). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_config.h"

struct item {
    char *name;
    char *path;
    uint64_t every_ms;
    char **other;
};

struct fz {
    char *top;
    char *s;
    int64_t i;
    uint64_t u;
    bool b;
    double d;
    uint64_t size;
    uint64_t dur;
    int e;
    char **list;
    char *secret;
    struct item *items;
    size_t n_items;
    struct item *free_items;
    size_t n_free_items;
};

static const char *const colours[] = {"red", "green", "blue", NULL};

#define F(x) offsetof(struct fz, x)
static const lf_config_option options[] = {
    {"", "top", LF_CFG_STRING, NULL, F(top), .description = "t"},
    {"a", "s", LF_CFG_STRING, "x", F(s), .description = "s"},
    {"a", "i", LF_CFG_INT, "0", F(i), .min = -1000, .max = 1000, .description = "i"},
    {"a", "u", LF_CFG_UINT, "1", F(u), .description = "u"},
    {"a", "b", LF_CFG_BOOL, "no", F(b), .description = "b"},
    {"b", "d", LF_CFG_DOUBLE, "0.5", F(d), .description = "d"},
    {"b", "size", LF_CFG_SIZE, "1K", F(size), .min = 0, .max = 1e15, .description = "size"},
    {"b", "dur", LF_CFG_DURATION, "1s", F(dur), .description = "dur"},
    {"b", "e", LF_CFG_ENUM, "red", F(e), .enum_values = colours, .description = "e"},
    {"c", "list", LF_CFG_LIST, NULL, F(list), .description = "list"},
    {"c", "secret", LF_CFG_STRING, NULL, F(secret), .flags = LF_CFG_SECRET, .description = "secret"},
};
#define I(x) offsetof(struct item, x)
static const lf_config_option item_options[] = {
    {"item.NAME", "path", LF_CFG_STRING, NULL, I(path), .flags = LF_CFG_REQUIRED, .description = "p"},
    {"item.NAME", "every", LF_CFG_DURATION, "5m", I(every_ms), .min = 1, .max = 1e12, .description = "e"},
};
static const lf_config_option free_options[] = {
    {"free.NAME", "every", LF_CFG_DURATION, "5m", I(every_ms), .description = "e"},
    {"free.NAME", LF_CFG_ANY_KEY, LF_CFG_LIST, NULL, I(other), .description = "any"},
};
static const lf_config_section_table sections[] = {
    {.prefix = "item", .options = item_options, .n_options = 2, .element_size = sizeof(struct item),
     .name_offset = I(name), .array_offset = F(items), .count_offset = F(n_items), .max_count = 16},
    {.prefix = "free", .options = free_options, .n_options = 2, .element_size = sizeof(struct item),
     .name_offset = I(name), .array_offset = F(free_items), .count_offset = F(n_free_items), .max_count = 16},
};
static const lf_config_table table = {
    .program = "fuzz", .options = options, .n_options = sizeof options / sizeof options[0],
    .sections = sections, .n_sections = 2, .target_size = sizeof(struct fz),
};

static char *dump(const struct fz *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    if (lf_config_dump(&table, c, f) != 0)
        abort();
    fclose(f);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct fz a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    lf_buf err = LF_BUF_INIT(4096);
    if (lf_config_load_string(&table, &a, text, "fuzz.conf", &err) == 0) {
        if (!a.secret) { /* a set secret is masked, and the mask is refused on load by design */
            char *d1 = dump(&a);
            if (lf_config_load_string(&table, &b, d1, "dump", &err) != 0) {
                fprintf(stderr, "dump does not load: %s\n%s\n", lf_buf_cstr(&err), d1);
                abort();
            }
            char *d2 = dump(&b);
            if (strcmp(d1, d2) != 0) {
                fprintf(stderr, "dump differs:\n%s\n---\n%s\n", d1, d2);
                abort();
            }
            free(d1);
            free(d2);
        }
    } else if (err.len == 0 || strncmp(lf_buf_cstr(&err), "fuzz.conf", 9) != 0) {
        fprintf(stderr, "error without the file name: \"%s\"\n", lf_buf_cstr(&err));
        abort();
    }
    lf_config_free(&table, &a);
    lf_config_free(&table, &b);
    lf_buf_free(&err);
    free(text);
    return 0;
}
