#include "lf_progress.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

int64_t lf_progress_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lf_progress_start(lf_progress *p, FILE *out, bool tty, const char *what, const char *unit, uint64_t total,
                       int64_t now_ms)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = tty;
    snprintf(p->what, sizeof p->what, "%s", what);
    p->unit = unit ? unit : "";
    p->total = total;
    p->start_ms = p->last_ms = now_ms;
}

/* 5200, or 4.2M for bytes */
static void amount(const lf_progress *p, double v, char *buf, size_t cap)
{
    if (strcmp(p->unit, "B") != 0) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    static const char *const units[] = {"B", "K", "M", "G", "T"};
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

static void duration(int64_t s, char *buf, size_t cap)
{
    if (s >= 3600)
        snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, cap, "%" PRId64 "s", s);
}

static void show(lf_progress *p, int64_t now_ms)
{
    double secs = (double)(now_ms - p->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    char done[32], total[32], per[32], eta[32] = "";
    amount(p, (double)p->done, done, sizeof done);
    amount(p, (double)p->total, total, sizeof total);
    amount(p, rate, per, sizeof per);
    bool known = p->total > 0;
    unsigned pct = known ? (unsigned)(p->done >= p->total ? 100 : p->done * 100 / p->total) : 0;
    if (known && rate > 0 && p->done < p->total)
        duration((int64_t)((double)(p->total - p->done) / rate + 0.5), eta, sizeof eta);
    if (p->tty) {
        char bar[21];
        for (unsigned i = 0; i < 20; i++)
            bar[i] = i < pct / 5 ? '#' : '.';
        bar[20] = '\0';
        if (known)
            fprintf(p->out, "\r%-10s [%s] %3u%%  %s/%s  %s/s%s%s\033[K", p->what, bar, pct, done, total, per,
                    eta[0] ? "  ETA " : "", eta);
        else
            fprintf(p->out, "\r%-10s %s  %s/s\033[K", p->what, done, per);
        p->drawn = true;
    } else if (known) {
        fprintf(p->out, "%s: %s of %s (%u%%), %s/s%s%s%s\n", p->what, done, total, pct, per, eta[0] ? ", about " : "",
                eta, eta[0] ? " left" : "");
    } else {
        fprintf(p->out, "%s: %s so far, %s/s\n", p->what, done, per);
    }
    fflush(p->out);
}

void lf_progress_update(lf_progress *p, uint64_t done, int64_t now_ms)
{
    p->done = done;
    if (now_ms - p->last_ms < (p->tty ? LF_PROGRESS_REDRAW_MS : LF_PROGRESS_LINE_MS))
        return;
    p->last_ms = now_ms;
    show(p, now_ms);
}

void lf_progress_end(lf_progress *p, int64_t now_ms)
{
    char done[32], took[32];
    amount(p, (double)p->done, done, sizeof done);
    duration((now_ms - p->start_ms + 500) / 1000, took, sizeof took);
    fprintf(p->out, "%s%s: %s done in %s\n", p->tty && p->drawn ? "\r\033[K" : "", p->what, done, took);
    fflush(p->out);
}
