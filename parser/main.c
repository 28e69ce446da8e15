/* logferry-parser: entry point. */
#include "lf_service.h"
#include "parse_cli.h"
#include "parser_config.h"

/* `logferry-parser parse ...` works on files alone: no configuration, no daemon. */
static int run_parse(lf_service *svc, int argc, char **argv)
{
    return lf_parser_cli_parse(argc, argv);
}

static const lf_service_command parser_commands[] = {
    {"parse", "[--type NAME | --format FORMAT ...] FILE|-",
     "Parse a log file and print one JSON object per event (parse --help for its options).", run_parse,
     .no_config = true},
};

static const lf_service_def parser = {
    .program = "logferry-parser",
    .summary = "Takes session ids from the receiver's queue, parses each session's lines into events and "
               "loads them into MySQL (and Elasticsearch).",
    .config = &lf_parser_config_table,
    .commands = parser_commands,
    .n_commands = sizeof parser_commands / sizeof parser_commands[0],
};

int main(int argc, char **argv)
{
    return lf_service_main(&parser, argc, argv);
}
