/* Development driver for `logferry-parser parse` until the parser's main.c dispatches to it. */
#include <string.h>

#include "parse_cli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "parse") == 0)
        return lf_parser_cli_parse(argc - 1, argv + 1);
    return lf_parser_cli_parse(argc, argv);
}
