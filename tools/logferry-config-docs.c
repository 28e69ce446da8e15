/* Prints docs/configuration.md, the configuration reference, from the five programs' tables, or with
 * --man the manual page logferry.conf(5). scripts/test.sh checks that the committed files match:
 * regenerate them with scripts/gen-docs.sh. */
#include <stdio.h>
#include <string.h>

#include "analytics_config.h"
#include "lf_config.h"
#include "monitor_config.h"
#include "parser_config.h"
#include "receiver_config.h"
#include "uploader_config.h"

int main(int argc, char **argv)
{
    const lf_config_table *const tables[] = {
        &lf_uploader_config_table, &lf_receiver_config_table, &lf_parser_config_table,
        &lf_analytics_config_table, &lf_monitor_config_table,
    };
    size_t n = sizeof tables / sizeof tables[0];
    int man = argc == 2 && strcmp(argv[1], "--man") == 0;
    if (argc > 1 && !man) {
        fprintf(stderr, "usage: logferry-config-docs [--man]\n");
        return 2;
    }
    if ((man ? lf_config_write_man(tables, n, stdout) : lf_config_write_markdown(tables, n, stdout)) != 0 ||
        fflush(stdout) != 0) {
        fprintf(stderr, "logferry-config-docs: cannot write the reference\n");
        return 1;
    }
    return 0;
}
