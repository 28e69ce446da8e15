/* logferry-uploader: entry point. */
#include "lf_service.h"
#include "uploader_config.h"

static const lf_service_def uploader = {
    .program = "logferry-uploader",
    .summary = "Finds finished session logs, zips each with a manifest, signs and uploads it to the "
               "receiver, and keeps an offline outbox.",
    .config = &lf_uploader_config_table,
};

int main(int argc, char **argv)
{
    return lf_service_main(&uploader, argc, argv);
}
