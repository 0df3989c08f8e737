/*
 * A bounded queue whose waits each make their own semaphore (or condition
 * variable), as Python's threading.Condition does: wait() allocates a lock,
 * queues it, and blocks on it until notify() releases it. Every wait is a
 * new object at a recycled address, a new generation of a channel.
 *
 *   perwait sem|cond N [--held-at K]
 *   perwait alive N S
 *
 * A producer puts N items through a queue of 4 slots to a consumer. With
 * --held-at K, the consumer's K-th wait is made holding a lock of its own
 * (`late`, which nobody else takes: no deadlock, one held-across-call
 * fact). Prints "perwait: ok <peak RSS in kB>".
 *
 * alive: N semaphores alive at once (as a program's futures each with a
 * lock of their own), each posted by one thread and waited on by another,
 * then S seconds idle. Prints "perwait: alive <CPU ms spent idle> <peak RSS
 * in kB>": what the process costs while it keeps them and does nothing.
 */
#include "common.h"
#include <semaphore.h>
#include <sys/resource.h>
#include <unistd.h>

enum { SLOTS = 4 };

struct waiter {
    struct waiter *next;
    sem_t sem;
    pthread_cond_t cond;
    int woken;
};

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t late = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *waiters;
static long items, used, n, held_at = -1;
static int use_cond;

/* Called with m held: waits for a notify on a waiter of its own. */
static void wait_once(int hold_late) {
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        die("calloc");
    if (use_cond)
        check(pthread_cond_init(&w->cond, NULL), "pthread_cond_init");
    else if (sem_init(&w->sem, 0, 0) != 0)
        die("sem_init");
    w->next = waiters;
    waiters = w;
    if (use_cond) {
        while (!w->woken)
            check(pthread_cond_wait(&w->cond, &m), "pthread_cond_wait");
        check(pthread_cond_destroy(&w->cond), "pthread_cond_destroy");
    } else {
        pthread_mutex_unlock(&m);
        if (hold_late)
            pthread_mutex_lock(&late);
        while (sem_wait(&w->sem) != 0)
            if (errno != EINTR)
                die("sem_wait");
        if (hold_late)
            pthread_mutex_unlock(&late);
        pthread_mutex_lock(&m);
        if (sem_destroy(&w->sem) != 0)
            die("sem_destroy");
    }
    free(w);
}

/* Called with m held: wakes every waiter. */
static void notify_all(void) {
    while (waiters) {
        struct waiter *w = waiters;
        waiters = w->next;
        if (use_cond) {
            w->woken = 1;
            check(pthread_cond_signal(&w->cond), "pthread_cond_signal");
        } else if (sem_post(&w->sem) != 0) {
            die("sem_post");
        }
    }
}

static void *producer(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    for (long i = 0; i < n; i++) {
        while (used == SLOTS)
            wait_once(0);
        used++;
        notify_all();
    }
    pthread_mutex_unlock(&m);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    long waits = 0;
    pthread_mutex_lock(&m);
    for (long i = 0; i < n; i++) {
        while (used == 0)
            wait_once(++waits == held_at);
        used--;
        items++;
        notify_all();
    }
    pthread_mutex_unlock(&m);
    return NULL;
}

/* The peak RSS (kB) of this image: VmHWM, not getrusage's ru_maxrss,
 * which counts the parent's memory when it spawned this process with vfork
 * semantics (Rust's Command does: a test harness of 100 MB made every run
 * print 100 MB). */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("/proc/self/status");
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    if (kb < 0)
        die("VmHWM");
    return kb;
}

static sem_t *alive;

static void *post_all(void *arg) {
    (void)arg;
    for (long i = 0; i < n; i++)
        if (sem_post(&alive[i]) != 0)
            die("sem_post");
    return NULL;
}

static double cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int keep_alive(long count, int idle_s) {
    n = count;
    alive = calloc(n, sizeof *alive);
    if (!alive)
        die("calloc");
    for (long i = 0; i < n; i++)
        if (sem_init(&alive[i], 0, 0) != 0)
            die("sem_init");
    pthread_t p = spawn("poster", post_all, NULL);
    for (long i = 0; i < n; i++)
        while (sem_wait(&alive[i]) != 0)
            if (errno != EINTR)
                die("sem_wait");
    pthread_join(p, NULL);
    double before = cpu_ms();
    sleep(idle_s);
    double idle = cpu_ms() - before;
    printf("perwait: alive %.0f %ld\n", idle, peak_rss_kb());
    for (long i = 0; i < n; i++)
        sem_destroy(&alive[i]);
    free(alive);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "alive") == 0)
        return keep_alive(atol(argv[2]), atoi(argv[3]));
    if (argc < 3 || (strcmp(argv[1], "sem") != 0 && strcmp(argv[1], "cond") != 0)) {
        fprintf(stderr, "usage: perwait sem|cond N [--held-at K] | perwait alive N S\n");
        return 2;
    }
    use_cond = strcmp(argv[1], "cond") == 0;
    n = atol(argv[2]);
    if (argc > 4 && strcmp(argv[3], "--held-at") == 0)
        held_at = atol(argv[4]);
    pthread_t p = spawn("producer", producer, NULL);
    pthread_t c = spawn("consumer", consumer, NULL);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    if (items != n) {
        fprintf(stderr, "perwait: %ld items of %ld\n", items, n);
        return 1;
    }
    printf("perwait: ok %ld\n", peak_rss_kb());
    return 0;
}
