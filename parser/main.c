/* logferry-parser: entry point. */
#include <stdio.h>
#include <string.h>

#include "db_schema.h"
#include "lf_error.h"
#include "lf_mysql.h"
#include "lf_service.h"
#include "parse_cli.h"
#include "parser_config.h"
#include "reparse.h"
#include "service.h"

/* `logferry-parser parse ...` works on files alone: no configuration, no daemon. */
static int run_parse(lf_service *svc, int argc, char **argv)
{
    (void)svc;
    return lf_parser_cli_parse(argc, argv);
}

static int db_connect(lf_service *svc, lf_mysql **db)
{
    lf_mysql_options o;
    lf_parser_mysql_options(lf_service_config_data(svc), &o);
    int rc = lf_mysql_connect(&o, db);
    if (rc < 0)
        fprintf(stderr, "logferry-parser db: connecting to MySQL: %s\n", lf_strerror(rc));
    return rc;
}

/* `db migrate` applies pending migrations; `db status` shows the version and what is pending. */
static int run_db(lf_service *svc, int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "migrate") != 0 && strcmp(argv[1], "status") != 0)) {
        fprintf(stderr, "usage: logferry-parser db migrate|status\n");
        return 2;
    }
    lf_mysql *db = NULL;
    if (db_connect(svc, &db) < 0)
        return 1;
    int rc;
    if (strcmp(argv[1], "migrate") == 0) {
        unsigned applied = 0;
        rc = lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied);
        if (rc < 0)
            fprintf(stderr, "logferry-parser db migrate: %s\n", lf_mysql_error(db));
        else
            printf("applied %u migration%s\n", applied, applied == 1 ? "" : "s");
    }
    unsigned version = 0, pending = 0;
    rc = lf_mysql_schema_version(db, lf_parser_migrations, lf_parser_migrations_count, &version, &pending);
    if (rc < 0) {
        fprintf(stderr, "logferry-parser db: %s\n", lf_mysql_error(db));
    } else {
        printf("schema version %u, %u pending\n", version, pending);
        for (size_t i = 0; i < lf_parser_migrations_count; i++)
            printf("  %3u %-8s %s\n", lf_parser_migrations[i].version,
                   lf_parser_migrations[i].version <= version ? "applied" : "pending", lf_parser_migrations[i].name);
    }
    lf_mysql_close(db);
    return rc < 0 ? 1 : 0;
}

static int run_reparse(lf_service *svc, int argc, char **argv)
{
    return lf_parser_reparse(lf_service_config_data(svc), argc, argv);
}

static int start(lf_service *svc)
{
    lf_parser_service *ps = NULL;
    int rc = lf_parser_service_start(svc, &ps);
    if (rc == 0)
        lf_service_set_user(svc, ps);
    return rc;
}

static void stop(lf_service *svc)
{
    lf_parser_service_stop(lf_service_user(svc));
    lf_service_set_user(svc, NULL);
}

static const lf_service_command parser_commands[] = {
    {"parse", "[--type NAME | --format FORMAT ...] FILE|-",
     "Parse a log file and print one JSON object per event (parse --help for its options).", run_parse,
     .no_config = true},
    {"db", "migrate | status", "Create or migrate the parsed-events database; show its schema version.", run_db, .no_config = false},
    {"reparse", "--session ID | --since TIME | --failed [--token T]",
     "Put stored sessions back on the receiver's queue (after a parser upgrade or fix).", run_reparse,
     .no_config = false},
};

static const lf_service_def parser = {
    .program = "logferry-parser",
    .summary = "Takes session ids from the receiver's queue, parses each session's lines into events and "
               "loads them into MySQL (and Elasticsearch).",
    .config = &lf_parser_config_table,
    .commands = parser_commands,
    .n_commands = sizeof parser_commands / sizeof parser_commands[0],
    .start = start,
    .stop = stop,
};

int main(int argc, char **argv)
{
    return lf_service_main(&parser, argc, argv);
}
