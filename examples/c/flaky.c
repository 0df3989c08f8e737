/*
 * flaky: a lock-order inversion that happens in some runs only. Two
 * threads take the config lock and the stats lock; the reporter takes
 * them in the wrong order only when its (random) report is a slow one,
 * about one run in three. A stress run (`holdcheck run --repeat N`) finds
 * it in the runs that took that path, and reports it once.
 *
 * Prints "flaky: inverted" in the runs that took the wrong order.
 */
#include "common.h"
#include <sys/random.h>

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static int slow_report;

static void *updater(void *arg) {
    (void)arg;
    turn_wait(0);
    pthread_mutex_lock(&config_lock);
    pthread_mutex_lock(&stats_lock);
    pthread_mutex_unlock(&stats_lock);
    pthread_mutex_unlock(&config_lock);
    turn_pass();
    return NULL;
}

static NOINLINE void report_stats(void) {
    pthread_mutex_lock(&stats_lock);
    if (slow_report) {
        pthread_mutex_lock(&config_lock); /* the wrong order */
        pthread_mutex_unlock(&config_lock);
    }
    pthread_mutex_unlock(&stats_lock);
}

static void *reporter(void *arg) {
    (void)arg;
    turn_wait(1);
    report_stats();
    return NULL;
}

int main(void) {
    unsigned char r = 0;
    if (getrandom(&r, 1, 0) != 1)
        die("getrandom");
    slow_report = r % 3 == 0;
    /* At the same time, taking turns: never hangs. */
    pthread_t u = spawn("updater", updater, NULL);
    pthread_t rep = spawn("reporter", reporter, NULL);
    pthread_join(u, NULL);
    pthread_join(rep, NULL);
    if (slow_report)
        printf("flaky: inverted\n");
    return 0;
}
