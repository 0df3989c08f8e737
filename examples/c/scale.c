/*
 * scale: many threads, many locks, many acquisitions, with a ground truth.
 *
 *   scale THREADS LOCKS ROUNDS [--static]
 *
 * The locks are made by one pthread_mutex_init call each on the heap (one
 * lock class), or with --static are a static array, never initialised
 * (each lock its own class; at most 100 000).
 *
 * Thread t, in round r, takes lock A = (t * 400 + r % 400) % LOCKS, then
 * lock B = (A + 1) % LOCKS while holding A. So the lock-order facts are
 * exactly the pairs (A, B, thread): the test recomputes them and checks
 * that the trace has every one. Prints the address of lock 0 and the size
 * of a lock, then "scale: ok".
 */
#include "common.h"

enum { MAX_STATIC = 100000 };
static pthread_mutex_t static_locks[MAX_STATIC];
static pthread_mutex_t *locks;
static long nlocks, rounds;

static void *worker(void *arg) {
    long t = (long)arg;
    for (long r = 0; r < rounds; r++) {
        long a = (t * 400 + r % 400) % nlocks, b = (a + 1) % nlocks;
        pthread_mutex_lock(&locks[a]);
        pthread_mutex_lock(&locks[b]);
        pthread_mutex_unlock(&locks[b]);
        pthread_mutex_unlock(&locks[a]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int statics = argc == 5 && strcmp(argv[4], "--static") == 0;
    if (argc != 4 && !statics) {
        fprintf(stderr, "usage: scale THREADS LOCKS ROUNDS [--static]\n");
        return 2;
    }
    long threads = atol(argv[1]);
    nlocks = atol(argv[2]);
    rounds = atol(argv[3]);
    if (statics) {
        if (nlocks > MAX_STATIC) {
            fprintf(stderr, "scale: at most %d static locks\n", MAX_STATIC);
            return 2;
        }
        locks = static_locks; /* zero: PTHREAD_MUTEX_INITIALIZER */
    } else {
        locks = calloc(nlocks, sizeof *locks);
        if (!locks)
            die("calloc");
        for (long i = 0; i < nlocks; i++)
            pthread_mutex_init(&locks[i], NULL);
    }
    printf("scale: locks at %p, %zu bytes each\n", (void *)locks, sizeof *locks);
    fflush(stdout);
    pthread_t *ts = calloc(threads, sizeof *ts);
    for (long t = 0; t < threads; t++)
        check(pthread_create(&ts[t], NULL, worker, (void *)t), "pthread_create");
    for (long t = 0; t < threads; t++)
        pthread_join(ts[t], NULL);
    printf("scale: ok\n");
    return 0;
}
