/*
 * lockbench: what a lock costs, in ns per operation. Run natively and under
 * the shim by `cargo run --release -p holdcheck-bench`, which prints the
 * ratios. Each line: "<case> <ns per op>".
 */
#include "common.h"
#include <time.h>

static pthread_mutex_t m1 = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m2 = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long iters = 5000000;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static NOINLINE void mutex_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m1);
        pthread_mutex_unlock(&m1);
    }
}

static NOINLINE void rwlock_read_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_rwlock_rdlock(&rw);
        pthread_rwlock_unlock(&rw);
    }
}

static NOINLINE void rwlock_write_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_rwlock_wrlock(&rw);
        pthread_rwlock_unlock(&rw);
    }
}

/* Two nested pairs: the lock-order path (a fact seen before). */
static NOINLINE void nested_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m1);
        pthread_mutex_lock(&m2);
        pthread_mutex_unlock(&m2);
        pthread_mutex_unlock(&m1);
    }
}

static void measure(const char *name, void (*fn)(long)) {
    fn(iters / 10); /* warm up: resolve symbols, record first facts */
    double t0 = now_ns();
    fn(iters);
    double t1 = now_ns();
    printf("%s %.2f\n", name, (t1 - t0) / iters);
}

/* Lock-heavy: two threads, each on its own lock, sharing one now and then. */
static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static long shared_count;

static void *heavy(void *arg) {
    pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER;
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&own);
        if ((i & 63) == 0) {
            pthread_mutex_lock(&shared);
            shared_count++;
            pthread_mutex_unlock(&shared);
        }
        pthread_mutex_unlock(&own);
    }
    return NULL;
}

/* The programs holdcheck is for have threads: an idle helper thread makes
 * this one multi-threaded in both runs (glibc drops its single-threaded lock
 * fast path for good), and its blocking read publishes a wait, so under the
 * shim the watchdog runs while the pairs are measured. */
static int idle_pipe[2];

static void *idle_helper(void *arg) {
    (void)arg;
    char c;
    if (read(idle_pipe[0], &c, 1) < 0)
        die("read");
    return NULL;
}

static void start_watchdog(void) {
    if (pipe(idle_pipe) < 0)
        die("pipe");
    spawn("idle-helper", idle_helper, NULL);
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1)
        iters = atol(argv[1]);
    start_watchdog();
    measure("mutex_pair", mutex_pair);
    measure("rwlock_read_pair", rwlock_read_pair);
    measure("rwlock_write_pair", rwlock_write_pair);
    measure("nested_pair", nested_pair);
    double t0 = now_ns();
    pthread_t a = spawn("heavy-a", heavy, (void *)iters);
    pthread_t b = spawn("heavy-b", heavy, (void *)iters);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("lock_heavy_2_threads %.2f\n", (now_ns() - t0) / iters);
    return 0;
}
