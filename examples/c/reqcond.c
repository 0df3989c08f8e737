/*
 * Requests completed through a condition variable made per request (a
 * request object with its own mutex and condition variable), by a worker
 * that takes a stats lock before it completes each one:
 *
 *   reqcond N [--held] [--plain]
 *
 * The client makes a request, hands it to the worker over a pipe, and
 * waits on the request's condition variable. With --held it waits holding
 * the stats lock: had the worker not taken the stats lock before the
 * client did (here the worker acknowledges first, over a second pipe), the
 * worker would block on it and never signal: a potential deadlock through
 * a lock and condition variables made per request. Without --held, no
 * cycle. With --plain, a request's mutex is not initialised through
 * pthread_mutex_init (calloc's zeroes are PTHREAD_MUTEX_INITIALIZER, as a
 * C++ std::mutex in a heap object is made), and every request is at an
 * address of its own (one array, as the objects of a server whose heap
 * grows): its class is where it was first taken. Prints "reqcond: ok".
 */
#include "common.h"

struct request {
    pthread_mutex_t m;
    pthread_cond_t done_cv;
    _Atomic int waiting;
    int done;
};

static pthread_mutex_t stats = PTHREAD_MUTEX_INITIALIZER;
static long completed;
static int to_worker[2], acks[2];

static void *worker(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        struct request *r;
        if (read(to_worker[0], &r, sizeof r) != sizeof r)
            die("read");
        pthread_mutex_lock(&stats);
        completed++;
        pthread_mutex_unlock(&stats);
        char c = 'a';
        if (write(acks[1], &c, 1) != 1)
            die("write");
        /* Completed only once the client waits: it says so holding the
         * request's mutex, which only its wait then releases. */
        while (!atomic_load(&r->waiting))
            sched_yield();
        pthread_mutex_lock(&r->m);
        r->done = 1;
        pthread_cond_signal(&r->done_cv);
        pthread_mutex_unlock(&r->m);
    }
    return NULL;
}

/* `pooled`: a request of the --plain array, else NULL (one of its own). */
static NOINLINE void submit_and_wait(int held, struct request *pooled) {
    struct request *r = pooled ? pooled : calloc(1, sizeof *r);
    if (!r)
        die("calloc");
    if (!pooled)
        check(pthread_mutex_init(&r->m, NULL), "pthread_mutex_init");
    check(pthread_cond_init(&r->done_cv, NULL), "pthread_cond_init");
    if (write(to_worker[1], &r, sizeof r) != sizeof r)
        die("write");
    char c;
    if (read(acks[0], &c, 1) != 1)
        die("read");
    if (held)
        pthread_mutex_lock(&stats);
    pthread_mutex_lock(&r->m);
    atomic_store(&r->waiting, 1);
    while (!r->done)
        check(pthread_cond_wait(&r->done_cv, &r->m), "pthread_cond_wait");
    pthread_mutex_unlock(&r->m);
    if (held)
        pthread_mutex_unlock(&stats);
    check(pthread_cond_destroy(&r->done_cv), "pthread_cond_destroy");
    if (!pooled) {
        check(pthread_mutex_destroy(&r->m), "pthread_mutex_destroy");
        free(r);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: reqcond N [--held] [--plain]\n");
        return 2;
    }
    long n = atol(argv[1]);
    int held = 0, plain = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--held") == 0)
            held = 1;
        else if (strcmp(argv[i], "--plain") == 0)
            plain = 1;
        else {
            fprintf(stderr, "reqcond: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    struct request *pool = plain ? calloc(n, sizeof *pool) : NULL;
    if (plain && !pool)
        die("calloc");
    if (pipe(to_worker) || pipe(acks))
        die("pipe");
    pthread_t w = spawn("worker", worker, (void *)n);
    for (long i = 0; i < n; i++)
        submit_and_wait(held, pool ? &pool[i] : NULL);
    pthread_join(w, NULL);
    free(pool);
    printf("reqcond: ok %ld\n", completed);
    return 0;
}
