/* logferry-receiver: entry point. */
#include "lf_service.h"
#include "receiver_config.h"

static const lf_service_def receiver = {
    .program = "logferry-receiver",
    .summary = "The central HTTP API: verifies and stores uploaded sessions, queues them for the parsers "
               "and answers queries.",
    .config = &lf_receiver_config_table,
};

int main(int argc, char **argv)
{
    return lf_service_main(&receiver, argc, argv);
}
