/*
 * timed_waits: a healthy program whose threads wait with timeouts ten
 * minutes away, as a server's pool threads do between jobs; `holdcheck
 * inspect` says when each returns by itself. The main thread joins one of
 * them (a wait with no timeout).
 *
 *   "cond-mono"   pthread_cond_timedwait on a CLOCK_MONOTONIC condition
 *                 variable (a deadline on the monotonic clock)
 *   "cond-real"   pthread_cond_timedwait on a default one (realtime)
 *   "poller"      poll() of a pipe nobody writes, 600 000 ms
 *   "sleeper"     nanosleep() of 600 s
 */
#include "common.h"
#include <poll.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mono, real_clock = PTHREAD_COND_INITIALIZER;
static int fds[2];

static void wait_on(pthread_cond_t *c, clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_sec += 600;
    pthread_mutex_lock(&m);
    pthread_cond_timedwait(c, &m, &t);
    pthread_mutex_unlock(&m);
}

static void *cond_mono(void *arg) {
    (void)arg;
    wait_on(&mono, CLOCK_MONOTONIC);
    return NULL;
}

static void *cond_real(void *arg) {
    (void)arg;
    wait_on(&real_clock, CLOCK_REALTIME);
    return NULL;
}

static void *poller(void *arg) {
    (void)arg;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    poll(&p, 1, 600000);
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec t = {600, 0};
    nanosleep(&t, NULL);
    return NULL;
}

int main(void) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&mono, &a);
    if (pipe(fds) < 0)
        die("pipe");
    spawn("cond-mono", cond_mono, NULL);
    spawn("cond-real", cond_real, NULL);
    spawn("poller", poller, NULL);
    pthread_t s = spawn("sleeper", sleeper, NULL);
    pthread_join(s, NULL);
    return 0;
}
