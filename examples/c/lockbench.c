/*
 * lockbench: what a lock costs, in ns per operation. Run natively and under
 * the shim by `cargo run --release -p holdcheck-bench`, which prints the
 * ratios. Each line: "<case> <ns per op>".
 *
 *   lockbench [ITERS]          every case (the first while the process
 *                              has one thread, the others with a helper)
 *   lockbench --pairs N        N uncontended mutex pairs, nothing else (for
 *                              instruction counts under callgrind)
 *   lockbench --single-pairs N the same while the process has one thread
 *   lockbench --roundtrips N   N socket round trips (a send and a recv on
 *                              a socketpair), nothing else (the same)
 *   lockbench --locked-roundtrips N   the same, each under a mutex
 *   lockbench --signals N      N steady condition-variable signals under
 *                              two locks, a lock made and destroyed beside
 *                              each (signal_churn_pair)
 *   lockbench --heavy N        the lock-heavy two-thread loop only, N
 *                              iterations each (for whole-program ratios:
 *                              ThreadSanitizer, Valgrind, the shim)
 */
#include "common.h"
#include <time.h>

static pthread_mutex_t m1 = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m2 = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m3 = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m4 = PTHREAD_MUTEX_INITIALIZER;
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

/* The nested pair while another thread makes, signals and destroys a
 * condition variable of its own in a loop (an object per request, or per
 * wait as Python's locks are): a new object elsewhere must not send this
 * thread's lock-order facts back to the slow path. */
static atomic_int churning;

static void *object_churn(void *arg) {
    pthread_cond_t *c = arg;
    while (atomic_load(&churning)) {
        pthread_cond_init(c, NULL);
        pthread_cond_signal(c);
        pthread_cond_destroy(c);
    }
    return NULL;
}

static NOINLINE void nested_pair_object_churn(long n) {
    static pthread_cond_t c;
    atomic_store(&churning, 1);
    pthread_t t = spawn("object-churn", object_churn, &c);
    nested_pair(n);
    atomic_store(&churning, 0);
    pthread_join(t, NULL);
}

/* Four nested pairs: a deeper held stack on the lock-order path. */
static NOINLINE void nested4_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m1);
        pthread_mutex_lock(&m2);
        pthread_mutex_lock(&m3);
        pthread_mutex_lock(&m4);
        pthread_mutex_unlock(&m4);
        pthread_mutex_unlock(&m3);
        pthread_mutex_unlock(&m2);
        pthread_mutex_unlock(&m1);
    }
}

/* A condition variable signalled under its mutex, nobody waiting: the
 * signal hook's path (a send on the condition variable's queue). */
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static NOINLINE void signal_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m1);
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&m1);
    }
}

/* The same signal under two locks, while a lock is made and destroyed
 * in every iteration (a lock per object elsewhere in the program): the
 * shim's per-thread caches must not be invalidated by a lock that no fact
 * names. */
static pthread_mutex_t scratch;

static NOINLINE void signal_churn_pair(long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m1);
        pthread_mutex_lock(&m2);
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&m2);
        pthread_mutex_unlock(&m1);
        pthread_mutex_init(&scratch, NULL);
        pthread_mutex_destroy(&scratch);
    }
}

/* A small block allocated and freed (the free hook's path: after the
 * nested cases, locks are known, so every free is measured against them). */
static NOINLINE void malloc_free_pair(long n) {
    for (long i = 0; i < n; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
}

/* A blocking-capable send and receive of one byte on a socketpair (the
 * I/O hooks' path), without and with a lock held across them. */
static int sp[2];

static NOINLINE void socket_roundtrip(long n) {
    char c = 'x';
    for (long i = 0; i < n; i++)
        if (send(sp[0], &c, 1, 0) != 1 || recv(sp[1], &c, 1, 0) != 1)
            die("socketpair");
}

static NOINLINE void socket_roundtrip_locked(long n) {
    char c = 'x';
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&m1);
        if (send(sp[0], &c, 1, 0) != 1 || recv(sp[1], &c, 1, 0) != 1)
            die("socketpair");
        pthread_mutex_unlock(&m1);
    }
}

/* Two threads on one lock: contended acquisitions (the slow path). */
static pthread_mutex_t contended = PTHREAD_MUTEX_INITIALIZER;

static void *contend(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&contended);
        pthread_mutex_unlock(&contended);
    }
    return NULL;
}

static NOINLINE void contended_pair(long n) {
    pthread_t a = spawn("contend-a", contend, (void *)(n / 2));
    pthread_t b = spawn("contend-b", contend, (void *)(n / 2));
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

/* The fastest of PASSES passes, each of a fifth of the iterations: on a
 * shared machine one long pass takes whatever preemption and interrupts
 * fall into it, which swings a system call's few hundred nanoseconds by
 * more than the shim adds (native and shim runs are measured alike). */
enum { PASSES = 5 };

static void measure(const char *name, void (*fn)(long)) {
    fn(iters / 10); /* warm up: resolve symbols, record first facts */
    long n = iters / PASSES;
    double best = 0;
    for (int i = 0; i < PASSES; i++) {
        double t0 = now_ns();
        fn(n);
        double ns = (now_ns() - t0) / n;
        if (i == 0 || ns < best)
            best = ns;
    }
    printf("%s %.2f\n", name, best);
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

/* Both threads at once, n iterations each (ns per iteration of one). */
static NOINLINE void heavy_pair(long n) {
    pthread_t a = spawn("heavy-a", heavy, (void *)n);
    pthread_t b = spawn("heavy-b", heavy, (void *)n);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
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
    if (argc > 2 && strcmp(argv[1], "--single-pairs") == 0) {
        mutex_pair(atol(argv[2]));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "--pairs") == 0) {
        start_watchdog();
        mutex_pair(atol(argv[2]));
        return 0;
    }
    int locked = argc > 2 && strcmp(argv[1], "--locked-roundtrips") == 0;
    if (locked || (argc > 2 && strcmp(argv[1], "--roundtrips") == 0)) {
        start_watchdog();
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
            die("socketpair");
        (locked ? socket_roundtrip_locked : socket_roundtrip)(atol(argv[2]));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "--signals") == 0) {
        start_watchdog();
        signal_churn_pair(atol(argv[2]));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "--heavy") == 0) {
        long n = atol(argv[2]);
        pthread_t a = spawn("heavy-a", heavy, (void *)n);
        pthread_t b = spawn("heavy-b", heavy, (void *)n);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        printf("shared %ld\n", shared_count);
        return 0;
    }
    if (argc > 1)
        iters = atol(argv[1]);
    /* Before any thread starts: glibc's single-thread path. */
    measure("single_thread_mutex_pair", mutex_pair);
    start_watchdog();
    measure("mutex_pair", mutex_pair);
    measure("rwlock_read_pair", rwlock_read_pair);
    measure("rwlock_write_pair", rwlock_write_pair);
    measure("nested_pair", nested_pair);
    measure("nested4_pair", nested4_pair);
    measure("nested_pair_object_churn", nested_pair_object_churn);
    measure("contended_pair", contended_pair);
    measure("signal_pair", signal_pair);
    measure("signal_churn_pair", signal_churn_pair);
    measure("malloc_free_pair", malloc_free_pair);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        die("socketpair");
    long saved = iters;
    iters = saved / 10; /* system calls: fewer */
    measure("socket_roundtrip", socket_roundtrip);
    measure("socket_roundtrip_locked", socket_roundtrip_locked);
    iters = saved;
    measure("lock_heavy_2_threads", heavy_pair);
    return 0;
}
