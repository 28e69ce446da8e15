/* Error convention (libuv's): functions return 0 (or a count) on success and a negative code on
 * failure. Codes are negated errno values (-ENOMEM, -EINVAL, ...) or the logferry codes below, which
 * lie outside errno's range. A function that fails never calls its callback. */
#ifndef LF_ERROR_H
#define LF_ERROR_H

enum {
    LF_ECORRUPT = -10001,  /* stored data failed a checksum, a format or a consistency check */
    LF_ECONFIG = -10002,   /* configuration is invalid */
    LF_ELIMIT = -10003,    /* a configured limit was exceeded (size, count, ratio) */
    LF_EAUTH = -10004,     /* authentication or authorisation failed */
    LF_ECONFLICT = -10005, /* same identity, different content */
    LF_EHTTP = -10006,     /* the peer answered with an HTTP error status */
    LF_EDB = -10007,       /* the database reported an error */
    LF_EFORMAT = -10008,   /* input does not have the expected format */
    LF_ECLOSED = -10009,   /* the object is shutting down */
};

/* Marks a function whose result carries an error the caller must handle: with -Werror, ignoring it
 * does not build. (GCC ignores a (void) cast here by design; where a failure may truly be ignored,
 * the function is not marked.) */
#define LF_MUST_CHECK __attribute__((warn_unused_result))

/* A static, human-readable description of any code this project returns. Never NULL. */
const char *lf_strerror(int code);

/* The short symbolic name ("ENOMEM", "LF_ECORRUPT"), for logs and JSON error fields. */
const char *lf_errname(int code);

#endif
