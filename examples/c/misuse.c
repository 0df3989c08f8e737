/*
 * misuse: lock misuse that leads to hangs and corruption, one mode each,
 * and a clean mode that uses every one of these calls rightly.
 *
 *   misuse unlock-unlocked   unlocks a mutex nobody holds
 *   misuse unlock-other      a thread unlocks the mutex another holds
 *   misuse relock-ignored    an error-checking mutex locked again: glibc
 *                            says EDEADLK, the code ignores it and unlocks
 *                            twice
 *   misuse destroy-locked    destroys a mutex it holds
 *   misuse use-destroyed     locks a mutex after destroying it
 *   misuse cond-unheld       waits on a condition variable with an
 *                            error-checking mutex it does not hold (glibc
 *                            fails the wait with EPERM), under another lock
 *   misuse cond-two-mutexes  two threads wait on one condition variable
 *                            with two different mutexes
 *   misuse hold-long         holds a mutex for 300 ms (reported with
 *                            HOLDCHECK_OPTIONS=hold_ms=100)
 *   misuse spin-destroy-locked  destroys a spinlock it holds
 *   misuse spin-unlock-unlocked unlocks a spinlock nobody holds
 *   misuse clean             all of the above done rightly, including a
 *                            cancelled condition wait whose cleanup handler
 *                            unlocks, and spinlocks made, used and
 *                            destroyed: nothing to report
 */
#include "common.h"
#include <time.h>

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static long stats;

static void errorcheck_init(pthread_mutex_t *m) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    check(pthread_mutex_init(m, &a), "pthread_mutex_init");
}

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, int ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(c, m, &t);
}

static NOINLINE void flush_stats(void) {
    /* The bug: the caller already released it. */
    pthread_mutex_unlock(&stats_lock);
}

static void *holder_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&stats_lock);
    turn_pass(); /* 1: held */
    turn_wait(2);
    return NULL; /* its lock was released by the other thread */
}

static NOINLINE void release_for_holder(void) { pthread_mutex_unlock(&stats_lock); }

static NOINLINE void update_twice(pthread_mutex_t *m) {
    pthread_mutex_lock(m);
    int rc = pthread_mutex_lock(m); /* EDEADLK, ignored */
    (void)rc;
    stats++;
    pthread_mutex_unlock(m);
    pthread_mutex_unlock(m); /* the caller's lock was already gone */
}

static NOINLINE void shutdown_stats(void) {
    pthread_mutex_lock(&stats_lock);
    pthread_mutex_destroy(&stats_lock); /* still held: EBUSY */
    pthread_mutex_unlock(&stats_lock);
}

static NOINLINE void late_update(pthread_mutex_t *m) {
    pthread_mutex_lock(m); /* destroyed: EINVAL */
    stats++;
    pthread_mutex_unlock(m);
}

static NOINLINE void wait_without_lock(pthread_mutex_t *m) {
    pthread_mutex_lock(&other_lock);
    int rc = pthread_cond_wait(&queue_cond, m); /* not held: EPERM */
    printf("misuse: pthread_cond_wait returned %s\n", rc == EPERM ? "EPERM" : "?");
    pthread_mutex_unlock(&other_lock);
}

static void *second_waiter_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&other_lock);
    timed_wait(&queue_cond, &other_lock, 10);
    pthread_mutex_unlock(&other_lock);
    return NULL;
}

static NOINLINE void wait_for_queue(pthread_mutex_t *m) {
    pthread_mutex_lock(m);
    timed_wait(&queue_cond, m, 10);
    pthread_mutex_unlock(m);
}

static NOINLINE void slow_update(int ms) {
    pthread_mutex_lock(&stats_lock);
    usleep(ms * 1000);
    stats++;
    pthread_mutex_unlock(&stats_lock);
}

static pthread_spinlock_t table_spin;

static NOINLINE void spin_table_free(void) {
    pthread_spin_lock(&table_spin);
    pthread_spin_destroy(&table_spin); /* still held */
}

static NOINLINE void spin_release_twice(void) {
    pthread_spin_lock(&table_spin);
    pthread_spin_unlock(&table_spin);
    pthread_spin_unlock(&table_spin); /* nobody holds it */
}

/* Spinlocks made, used and destroyed rightly, a bucket's lock as a hash
 * table keeps them. */
static NOINLINE void spin_buckets(void) {
    pthread_spinlock_t bucket[8];
    for (int i = 0; i < 8; i++)
        check(pthread_spin_init(&bucket[i], PTHREAD_PROCESS_PRIVATE), "pthread_spin_init");
    for (int i = 0; i < 8; i++) {
        pthread_spin_lock(&bucket[i]);
        stats++;
        pthread_spin_unlock(&bucket[i]);
    }
    for (int i = 0; i < 8; i++)
        check(pthread_spin_destroy(&bucket[i]), "pthread_spin_destroy");
}

static void unlock_cleanup(void *m) { pthread_mutex_unlock(m); }

static void *cancelled_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&queue_lock);
    pthread_cleanup_push(unlock_cleanup, &queue_lock);
    turn_pass(); /* 1: waiting */
    for (;;)
        pthread_cond_wait(&queue_cond, &queue_lock);
    pthread_cleanup_pop(1);
    return NULL;
}

static int clean(void) {
    pthread_mutex_t m;
    errorcheck_init(&m);
    /* A relock refused, and handled. */
    pthread_mutex_lock(&m);
    if (pthread_mutex_lock(&m) == EDEADLK)
        stats++;
    pthread_mutex_unlock(&m);
    /* Destroyed unlocked, made again, used. */
    pthread_mutex_destroy(&m);
    errorcheck_init(&m);
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    pthread_mutex_destroy(&m);
    /* One condition variable, one mutex, two threads. */
    wait_for_queue(&queue_lock);
    pthread_t t = spawn("waiter", cancelled_main, NULL);
    turn_wait(1);
    pthread_mutex_lock(&queue_lock); /* the waiter is in its wait */
    pthread_mutex_unlock(&queue_lock);
    pthread_cancel(t);
    pthread_join(t, NULL);
    /* Locked in one function, unlocked in another. */
    pthread_mutex_lock(&stats_lock);
    release_for_holder();
    slow_update(1);
    spin_buckets();
    printf("misuse clean: %ld\n", stats);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "clean";
    pthread_mutex_t m;
    if (!strcmp(mode, "unlock-unlocked")) {
        pthread_mutex_lock(&stats_lock);
        stats++;
        pthread_mutex_unlock(&stats_lock);
        flush_stats();
    } else if (!strcmp(mode, "unlock-other")) {
        pthread_t t = spawn("holder", holder_main, NULL);
        turn_wait(1);
        release_for_holder();
        turn_pass(); /* 2 */
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "relock-ignored")) {
        errorcheck_init(&m);
        update_twice(&m);
    } else if (!strcmp(mode, "destroy-locked")) {
        shutdown_stats();
    } else if (!strcmp(mode, "use-destroyed")) {
        pthread_mutex_init(&m, NULL);
        pthread_mutex_destroy(&m);
        late_update(&m);
    } else if (!strcmp(mode, "cond-unheld")) {
        errorcheck_init(&m);
        wait_without_lock(&m);
    } else if (!strcmp(mode, "cond-two-mutexes")) {
        wait_for_queue(&queue_lock);
        pthread_t t = spawn("second-waiter", second_waiter_main, NULL);
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "hold-long")) {
        slow_update(300);
    } else if (!strcmp(mode, "spin-destroy-locked")) {
        check(pthread_spin_init(&table_spin, PTHREAD_PROCESS_PRIVATE), "pthread_spin_init");
        spin_table_free();
    } else if (!strcmp(mode, "spin-unlock-unlocked")) {
        check(pthread_spin_init(&table_spin, PTHREAD_PROCESS_PRIVATE), "pthread_spin_init");
        spin_release_twice();
    } else if (!strcmp(mode, "clean")) {
        return clean();
    } else {
        fprintf(stderr, "misuse: unknown mode %s\n", mode);
        return 2;
    }
    printf("misuse %s: done\n", mode);
    return 0;
}
