/*
 * relock: a thread takes a lock it already holds.
 *
 *   relock               a default mutex, locked by main, locked again in
 *                        a helper (refresh_cache) that does not know its
 *                        caller holds it: main hangs for ever, and the
 *                        worker thread that needs the mutex waits behind it.
 *   relock --rwlock      a read lock held, the write lock of the same rwlock
 *                        asked for: hangs for ever as well.
 *   relock --errorcheck  the same relock on an error-checking mutex: glibc
 *                        returns EDEADLK at once, the program goes on and
 *                        ends (no finding).
 *   relock --recursive   a recursive mutex taken twice: fine (no finding).
 */
#include "common.h"

static pthread_mutex_t cache_lock;
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;

static NOINLINE int refresh_cache(void) { return pthread_mutex_lock(&cache_lock); }

static NOINLINE void *worker_main(void *arg) {
    (void)arg;
    usleep(100 * 1000);
    pthread_mutex_lock(&cache_lock);
    pthread_mutex_unlock(&cache_lock);
    return NULL;
}

static NOINLINE void rewrite_table(void) { pthread_rwlock_wrlock(&table_lock); }

int main(int argc, char **argv) {
    int kind = PTHREAD_MUTEX_DEFAULT;
    if (has_flag(argc, argv, "--errorcheck"))
        kind = PTHREAD_MUTEX_ERRORCHECK;
    if (has_flag(argc, argv, "--recursive"))
        kind = PTHREAD_MUTEX_RECURSIVE;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, kind);
    check(pthread_mutex_init(&cache_lock, &a), "pthread_mutex_init");

    if (has_flag(argc, argv, "--rwlock")) {
        spawn("idle-worker", worker_main, NULL);
        pthread_rwlock_rdlock(&table_lock);
        printf("relock: read lock held, asking for the write lock\n");
        fflush(stdout);
        rewrite_table();
        printf("relock: never printed\n");
        return 1;
    }

    pthread_t worker = spawn("cache-worker", worker_main, NULL);
    pthread_mutex_lock(&cache_lock);
    printf("relock: cache lock held, locking it again\n");
    fflush(stdout);
    int rc = refresh_cache();
    printf("relock: second lock returned %s\n", rc == EDEADLK ? "EDEADLK" : rc == 0 ? "0" : "?");
    if (rc == 0)
        pthread_mutex_unlock(&cache_lock); /* recursive: once more */
    pthread_mutex_unlock(&cache_lock);
    pthread_join(worker, NULL);
    return 0;
}
