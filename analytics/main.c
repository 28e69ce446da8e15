/* logferry-analytics: entry point. */
#include "analytics_config.h"
#include "lf_service.h"

static const lf_service_def analytics = {
    .program = "logferry-analytics",
    .summary = "Scheduled, incremental, idempotent loaders from the parsed tables into the analytics "
               "database.",
    .config = &lf_analytics_config_table,
};

int main(int argc, char **argv)
{
    return lf_service_main(&analytics, argc, argv);
}
