/* logferry-monitor: entry point. */
#include "lf_service.h"
#include "monitor_config.h"

static const lf_service_def monitor = {
    .program = "logferry-monitor",
    .summary = "Watches every other part of logferry and alerts to Slack; keeps working when the rest "
               "is down.",
    .config = &lf_monitor_config_table,
    .validate = lf_monitor_config_validate,
};

int main(int argc, char **argv)
{
    return lf_service_main(&monitor, argc, argv);
}
