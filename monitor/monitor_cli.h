/* The monitor's command-line subcommands, which work on the outbox database directly (also while
 * the daemon runs: SQLite serialises the writers):
 *
 *   silence CHECK DURATION [REASON...]   CHECK "*" silences every check; DURATION like 30m, 2h, 1d
 *   unsilence CHECK
 *   status                                every check: condition, since, silence, waiting messages
 */
#ifndef LF_MONITOR_CLI_H
#define LF_MONITOR_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* true when name is one of the subcommands above. */
bool lf_monitor_cli_is_command(const char *name);

/* Runs argv[0] (a subcommand) with its arguments against the outbox at db_path at time now_ms.
 * Output for people goes to out, errors to err. Returns the exit status: 0 done, 1 failed, 2 usage. */
int lf_monitor_cli_run(const char *db_path, int argc, char *const argv[], int64_t now_ms, FILE *out, FILE *err);

#endif
