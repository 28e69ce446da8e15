#include "lf_error.h"

#include <errno.h>
#include <string.h>

const char *lf_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case LF_ECORRUPT: return "stored data is corrupt";
    case LF_ECONFIG: return "invalid configuration";
    case LF_ELIMIT: return "configured limit exceeded";
    case LF_EAUTH: return "authentication failed";
    case LF_ECONFLICT: return "conflicting content for the same identity";
    case LF_EHTTP: return "HTTP error status from peer";
    case LF_EDB: return "database error";
    case LF_EFORMAT: return "malformed input";
    case LF_ECLOSED: return "shutting down";
    }
    if (code < 0 && code > -4096)
        return strerrordesc_np(-code) ? strerrordesc_np(-code) : "unknown error";
    return "unknown error";
}

const char *lf_errname(int code)
{
    switch (code) {
    case 0: return "OK";
    case LF_ECORRUPT: return "LF_ECORRUPT";
    case LF_ECONFIG: return "LF_ECONFIG";
    case LF_ELIMIT: return "LF_ELIMIT";
    case LF_EAUTH: return "LF_EAUTH";
    case LF_ECONFLICT: return "LF_ECONFLICT";
    case LF_EHTTP: return "LF_EHTTP";
    case LF_EDB: return "LF_EDB";
    case LF_EFORMAT: return "LF_EFORMAT";
    case LF_ECLOSED: return "LF_ECLOSED";
    }
    if (code < 0 && code > -4096 && strerrorname_np(-code))
        return strerrorname_np(-code);
    return "EUNKNOWN";
}
