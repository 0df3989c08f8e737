/*
 * trylock: one thread takes A then B; the other holds B and only *tries* A,
 * backing off when it is busy. A trylock never waits, so there is no cycle.
 *
 * With --blocking the second thread locks A for real (in the same helper,
 * take_a), starting once the first is done: a real inversion, kept apart
 * by time only, whose prediction `holdcheck confirm` then steers the
 * trylock program toward.
 */
#include "common.h"

static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t table = PTHREAD_RWLOCK_INITIALIZER;

static void *blocking_order(void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&lock_a);
        pthread_mutex_lock(&lock_b);
        pthread_rwlock_wrlock(&table);
        pthread_rwlock_unlock(&table);
        pthread_mutex_unlock(&lock_b);
        pthread_mutex_unlock(&lock_a);
    }
    return NULL;
}

static int blocking;

/* Tries A (or, with --blocking, locks it). */
static NOINLINE int take_a(void) {
    if (blocking)
        return pthread_mutex_lock(&lock_a);
    return pthread_mutex_trylock(&lock_a);
}

/* Trylocks made while holding another lock, and how many took the lock. */
static int tries, taken;

static void *backing_off(void *arg) {
    (void)arg;
    int got = 0;
    if (blocking)
        usleep(200 * 1000);
    for (int i = 0; i < 200; i++) {
        /* B then A, but A only tried. */
        pthread_mutex_lock(&lock_b);
        if (take_a() == 0) {
            got++;
            pthread_mutex_unlock(&lock_a);
        }
        pthread_mutex_unlock(&lock_b);
        /* table then B, B only tried; table then A, A only tried. */
        pthread_rwlock_rdlock(&table);
        if (pthread_mutex_trylock(&lock_b) == 0) {
            taken++;
            pthread_mutex_unlock(&lock_b);
        }
        if (pthread_mutex_trylock(&lock_a) == 0) {
            taken++;
            pthread_mutex_unlock(&lock_a);
        }
        tries += 2;
        pthread_rwlock_unlock(&table);
    }
    return (void *)(long)got;
}

int main(int argc, char **argv) {
    blocking = has_flag(argc, argv, "--blocking");
    pthread_t t1 = spawn("blocking", blocking_order, NULL);
    pthread_t t2 = spawn("backing-off", backing_off, NULL);
    pthread_join(t1, NULL);
    void *got;
    pthread_join(t2, &got);
    if (!blocking)
        tries += 200;
    taken += (int)(long)got;
    printf("trylock: %d tries under a held lock, %d took their lock\n", tries, taken);
    return 0;
}
