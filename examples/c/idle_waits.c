/*
 * idle_waits: threads idle on condition variables that only they have
 * signalled so far, until the main thread wakes them 2 s later. Nothing
 * here can deadlock, and nothing must be reported (a live deadlock ends
 * the program: said of an idle server, it kills a healthy one).
 *
 *   - "handler" signals `handler_cond` once to say it is up, then waits
 *     on the same condition variable for work: its own only feeder so far
 *     (mariadbd's slave_deadlock_handler at start-up).
 *   - "peer-a" and "peer-b" each signal `peers_cond` once, then both wait
 *     on it: each the other's only feeder so far.
 *
 * Prints "idle_waits: ok".
 *
 *   idle_waits --hang   the main thread never wakes them: it joins the
 *                       handler, and every thread waits for ever (a hang
 *                       `inspect` tells from outside: nothing can wake
 *                       any of them)
 */
#include "common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t handler_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t peers_cond = PTHREAD_COND_INITIALIZER;
static int up, stop;

/* Says it is up by signalling `cond`, then waits on it until stopped. */
static void *idle_on(void *arg) {
    pthread_cond_t *cond = arg;
    pthread_mutex_lock(&lock);
    up++;
    pthread_cond_signal(cond);
    while (!stop)
        pthread_cond_wait(cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[3] = {
        spawn("handler", idle_on, &handler_cond),
        spawn("peer-a", idle_on, &peers_cond),
        spawn("peer-b", idle_on, &peers_cond),
    };
    /* Up when all three said so (polled: no wait that could be lost). */
    for (;;) {
        pthread_mutex_lock(&lock);
        int all = up == 3;
        pthread_mutex_unlock(&lock);
        if (all)
            break;
        usleep(1000);
    }
    if (argc > 1 && strcmp(argv[1], "--hang") == 0) {
        puts("idle_waits: hanging");
        fflush(stdout);
        pthread_join(t[0], NULL);
    }
    /* The main thread is away: in a timed sleep, no wait the shim knows. */
    sleep(2);
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&handler_cond);
    pthread_cond_broadcast(&peers_cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    puts("idle_waits: ok");
    return 0;
}
