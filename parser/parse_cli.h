/* `logferry-parser parse ...`: parse a log file with a configured or inline log type and print one
 * JSON object per event. argv[0] is "parse". Returns the process exit code. */
#ifndef LF_PARSE_CLI_H
#define LF_PARSE_CLI_H

/* Events wait in a batch until it is mined: a template is decided for the batch as a whole. A batch
 * is flushed, at an event boundary, when it holds this many events or bytes of lines, and at the end
 * (bench/parse-accuracy mines its scale runs in the same batches). */
#define LF_PARSE_BATCH_EVENTS 65536
#define LF_PARSE_BATCH_BYTES (4u << 20) /* small enough to stay in the caches across batches */

int lf_parser_cli_parse(int argc, char **argv);

#endif
