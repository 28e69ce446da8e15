/* logferry-parser: entry point. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db_schema.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_keyring.h"
#include "lf_mysql.h"
#include "lf_service.h"
#include "logtype.h"
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

/* What start-up needs (lf_service_def.preflight): a worker token, a keyring that loads, log types
 * that load, [mysql] TLS settings that go together and files it can read, [queue] JetStream files. */
static void preflight(const void *config, lf_preflight *pf)
{
    const struct lf_parser_config *c = config;
    lf_preflight_url(pf, "receiver", "url", c->receiver_url);
    for (size_t i = 0; c->receiver_peers && c->receiver_peers[i]; i++)
        lf_preflight_url(pf, "receiver", "peers", c->receiver_peers[i]);
    lf_preflight_require(pf, "receiver", "token", c->receiver_token,
                         "the queue and the stored sessions need a worker token (logferry-receiver tokens add "
                         "NAME --scope worker)");
    char err[512] = "";
    lf_preflight_dir(pf, "parser", "keys_dir", c->keys_dir, false, false);
    if (c->keys_dir && access(c->keys_dir, R_OK | X_OK) == 0) {
        lf_keyring kr;
        memset(&kr, 0, sizeof kr);
        if (lf_crypto_init() != 0 || lf_keyring_load(&kr, c->keys_dir, true, err, sizeof err) != 0)
            lf_preflight_fail(pf, "parser", "keys_dir", "%s", *err ? err : "the keyring does not load");
        else if (kr.count == 0) /* nothing stored could be decrypted */
            lf_preflight_fail(pf, "parser", "keys_dir", "%s has no key: it is the receiver's keyring (copy it "
                              "from the receiver host, owner and mode kept)", c->keys_dir);
        lf_keyring_free(&kr);
    }
    lf_mysql_tls_preflight(pf, "mysql", "", &c->mysql_tls);
    lf_jsconfig_preflight(pf, &c->js);
    lf_logtypes types;
    memset(&types, 0, sizeof types);
    *err = '\0';
    if (lf_logtypes_load(&types, pf->config_path, err, sizeof err) < 0)
        lf_preflight_fail_located(pf, *err ? err : "the log types do not load");
    lf_logtypes_free(&types);
}

static const lf_service_command parser_commands[] = {
    {"parse", "[--type NAME | --format FORMAT ...] FILE|-",
     "Parse a log file and print one JSON object per event (parse --help for its options).", run_parse,
     .no_config = true, .own_help = true},
    {"db", "migrate | status", "Create or migrate the parsed-events database; show its schema version.", run_db, .no_config = false},
    {"reparse", "--session ID | --since TIME | --failed [--token T]",
     "Put stored sessions back on the receiver's queue (after a parser upgrade or fix).", run_reparse,
     .no_config = false},
};

static const lf_service_def parser = {
    .program = "logferry-parser",
    .summary = "Takes session ids from the receiver's queue, parses each session's lines into events and "
               "loads them into MySQL (and Elasticsearch).",
    .description = "Each worker takes a session id from the receiver's queue, fetches and decrypts the session, "
                   "parses every line with its log type ([logtype.NAME]: a line format, masks and the template "
                   "miner) and loads the events into MySQL (and Elasticsearch) in one transaction keyed by the "
                   "session id, then acks: a crash at any point leads to the same rows exactly once. Sessions "
                   "that fail are retried, then dead-lettered with their reason.",
    .section = "8",
    .state_dir = "/var/lib/logferry/parser",
    .config = &lf_parser_config_table,
    .commands = parser_commands,
    .preflight = preflight,
    .n_commands = sizeof parser_commands / sizeof parser_commands[0],
    .start = start,
    .stop = stop,
};

int main(int argc, char **argv)
{
    return lf_service_main(&parser, argc, argv);
}
