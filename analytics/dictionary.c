/* The data dictionary of the analytics database (dictionary.h). One entry per column, in the
 * tables' column order; tests/integration/test_analytics.py checks it against the migrated schema,
 * column for column, so a migration that adds a column without its meaning fails the suite. */
#include "dictionary.h"

#include <stdio.h>
#include <string.h>

#define DAY_UTC "a UTC calendar day"

const lf_dictionary_table lf_analytics_dictionary[] = {
    {"daily_usage", "One row per day, product, version and site: how many sessions started and by whom.",
     (const lf_dictionary_column[]){
         {"day", "DATE", "The day the sessions started (" DAY_UTC ")."},
         {"product", "VARCHAR(128)", "Product named in the session's manifest."},
         {"product_version", "VARCHAR(128)", "Its version."},
         {"site", "VARCHAR(64)", "The customer site whose uploader sent the sessions."},
         {"sessions", "INT", "Sessions that started that day."},
         {"users", "INT", "Distinct users among them (sessions without a user are not counted). Summing "
                          "over products, versions or days counts a user once per row."},
         {"hosts", "INT", "Distinct hosts among them."},
         {"duration_p50_ms", "BIGINT", "Median session duration in milliseconds (nearest rank; NULL when no "
                                       "session has a duration)."},
         {"duration_p90_ms", "BIGINT", "90th percentile duration (nearest rank)."},
         {"duration_p99_ms", "BIGINT", "99th percentile duration (nearest rank)."},
         {"crashed", "INT", "Sessions that ended in a crash."},
         {NULL, NULL, NULL}}},
    {"feature_usage", "One row per day, product, version, site and template: how often each kind of event "
                      "(a template of the parser's miner) occurred.",
     (const lf_dictionary_column[]){
         {"day", "DATE", "The day the sessions started (" DAY_UTC ")."},
         {"product", "VARCHAR(128)", "Product."},
         {"product_version", "VARCHAR(128)", "Version."},
         {"site", "VARCHAR(64)", "Site."},
         {"template_id", "BIGINT", "The event type: the template's id as the parser keeps it, merged "
                                   "templates counted under the one they joined."},
         {"template", "TEXT", "The template's text, variables shown as <*>."},
         {"events", "BIGINT", "Events of that type."},
         {"sessions", "INT", "Sessions with at least one such event (summing over days or sites adds "
                             "distinct sessions: a session has one day and one site)."},
         {NULL, NULL, NULL}}},
    {"errors_daily", "One row per session with errors: its error and fatal events.",
     (const lf_dictionary_column[]){
         {"day", "DATE", "The day the session started (" DAY_UTC ")."},
         {"product", "VARCHAR(128)", "Product."},
         {"product_version", "VARCHAR(128)", "Version."},
         {"site", "VARCHAR(64)", "Site."},
         {"session_id", "CHAR(32)", "The session (logferry.sessions.session_id in the parsed tables)."},
         {"errors", "INT", "Events at level error."},
         {"fatals", "INT", "Events at level fatal."},
         {NULL, NULL, NULL}}},
    {"new_error_templates", "Each error or fatal event type with the day it was first seen.",
     (const lf_dictionary_column[]){
         {"template_id", "BIGINT", "The event type."},
         {"first_day", "DATE", "The first day a session with such an event started (" DAY_UTC ")."},
         {"product", "VARCHAR(128)", "The smallest product among that day's sessions with it."},
         {"product_version", "VARCHAR(128)", "And its version."},
         {"template", "TEXT", "The template's text."},
         {NULL, NULL, NULL}}},
    {"retention_weekly", "Weekly retention per product: of the users whose first active week was cohort_week, "
                         "how many were active week_offset weeks later. Product-wide; the dashboard "
                         "filters by version and site from retention_activity.",
     (const lf_dictionary_column[]){
         {"cohort_week", "DATE", "Monday of the users' first active week (UTC)."},
         {"product", "VARCHAR(128)", "Product."},
         {"week_offset", "INT", "Weeks after the cohort week (0: the cohort week itself)."},
         {"users", "INT", "Users of the cohort active in that week."},
         {"cohort_users", "INT", "Users in the cohort."},
         {NULL, NULL, NULL}}},
    {"job_runs", "Every run of every analytics job: the pipeline page and `logferry-analytics status` read it.",
     (const lf_dictionary_column[]){
         {"id", "BIGINT", "Run number, increasing."},
         {"job", "VARCHAR(128)", "daily_usage, feature_usage, errors, retention or a [job.NAME]."},
         {"window_from", "DATE", "First day the run recomputed (NULL: none)."},
         {"window_to", "DATE", "Last day it recomputed."},
         {"rows", "BIGINT", "Rows it wrote."},
         {"started_at", "DATETIME(3)", "When it started (UTC)."},
         {"finished_at", "DATETIME(3)", "When it ended (UTC; NULL while running)."},
         {"duration_ms", "BIGINT", "How long it took."},
         {"status", "VARCHAR(16)", "running, ok, failed, or abandoned (its process died)."},
         {"error", "TEXT", "Why it failed."},
         {"host", "VARCHAR(255)", "The host it ran on."},
         {NULL, NULL, NULL}}},
    {"job_watermarks", "How far each job has read the parsed sessions.",
     (const lf_dictionary_column[]){
         {"job", "VARCHAR(128)", "The job."},
         {"parsed_until", "DATETIME(3)", "Sessions parsed up to this time (UTC) are in its tables."},
         {"updated_at", "DATETIME(3)", "When the watermark last moved (UTC)."},
         {NULL, NULL, NULL}}},
    {"retention_activity", "The retention job's state: who was active in which week, with which version "
                           "and at which site.",
     (const lf_dictionary_column[]){
         {"product", "VARCHAR(128)", "Product."},
         {"user_name", "VARCHAR(255)", "User."},
         {"week", "DATE", "Monday of a week the user had a session (UTC)."},
         {"product_version", "VARCHAR(128)", "A version they used that week."},
         {"site", "VARCHAR(64)", "A site they used it at."},
         {NULL, NULL, NULL}}},
    {"retention_cohort", "The retention job's state: each user's first active week per product.",
     (const lf_dictionary_column[]){
         {"product", "VARCHAR(128)", "Product."},
         {"user_name", "VARCHAR(255)", "User."},
         {"cohort_week", "DATE", "Monday of their first active week (UTC)."},
         {NULL, NULL, NULL}}},
    {"schema_migrations", "The schema's version: each migration applied, once.",
     (const lf_dictionary_column[]){
         {"version", "INT", "Migration number."},
         {"name", "VARCHAR(200)", "What it did."},
         {"applied_at", "DATETIME(3)", "When (server time)."},
         {NULL, NULL, NULL}}},
    {NULL, NULL, NULL},
};

int lf_analytics_dictionary_markdown(FILE *out)
{
    for (const lf_dictionary_table *t = lf_analytics_dictionary; t->name; t++) {
        if (fprintf(out, "### %s\n\n%s\n\n| column | type | meaning |\n|---|---|---|\n", t->name, t->meaning) < 0)
            return -1;
        for (const lf_dictionary_column *c = t->columns; c->name; c++)
            if (fprintf(out, "| `%s` | %s | %s |\n", c->name, c->type, c->meaning) < 0)
                return -1;
        if (fputc('\n', out) == EOF)
            return -1;
    }
    return 0;
}
