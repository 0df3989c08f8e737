/*
 * lost_wakeup: the classic lost wakeup of the concurrency-bug benchmarks.
 * Each consumer checks nothing before it waits (no predicate), and the
 * producer signals before they wait: both wait on their condition
 * variables for ever, and main waits in pthread_join. No lock is held by
 * anyone while they wait; only a look at every thread says it is hung.
 */
#include "common.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_a = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ready_b = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t signalled;

static NOINLINE void *consumer_main(void *arg) {
    pthread_cond_t *c = arg;
    pthread_barrier_wait(&signalled); /* the signal is already gone */
    pthread_mutex_lock(&m);
    pthread_cond_wait(c, &m); /* BUG: no predicate, the wakeup was lost */
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void) {
    pthread_barrier_init(&signalled, NULL, 3);
    pthread_t a = spawn("consumer-a", consumer_main, &ready_a);
    pthread_t b = spawn("consumer-b", consumer_main, &ready_b);
    pthread_mutex_lock(&m);
    pthread_cond_signal(&ready_a);
    pthread_cond_signal(&ready_b);
    pthread_mutex_unlock(&m);
    pthread_barrier_wait(&signalled);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    puts("lost_wakeup: done");
    return 0;
}
