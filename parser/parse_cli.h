/* `logferry-parser parse ...`: parse a log file with a configured or inline log type and print one
 * JSON object per event. argv[0] is "parse". Returns the process exit code. */
#ifndef LF_PARSE_CLI_H
#define LF_PARSE_CLI_H

int lf_parser_cli_parse(int argc, char **argv);

#endif
