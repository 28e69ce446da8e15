/* Prints docs/configuration.md, the configuration reference, from the five programs' tables.
 * scripts/test.sh checks that the committed file matches: regenerate it with
 *   build/ci/logferry-config-docs > docs/configuration.md */
#include <stdio.h>

#include "analytics_config.h"
#include "lf_config.h"
#include "monitor_config.h"
#include "parser_config.h"
#include "receiver_config.h"
#include "uploader_config.h"

int main(void)
{
    const lf_config_table *const tables[] = {
        &lf_uploader_config_table, &lf_receiver_config_table, &lf_parser_config_table,
        &lf_analytics_config_table, &lf_monitor_config_table,
    };
    if (lf_config_write_markdown(tables, sizeof tables / sizeof tables[0], stdout) != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "logferry-config-docs: cannot write the reference\n");
        return 1;
    }
    return 0;
}
