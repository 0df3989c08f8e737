/*
 * exit_holding: a worker thread returns on an error path without unlocking
 * the table lock it took. Nothing can release that lock any more: the next
 * thread that locks it waits for ever.
 *
 *   exit_holding --light        main only tries the lock afterwards (it is
 *                               busy for good) and ends: no hang, the
 *                               misuse is in the run all the same
 *   exit_holding --hang         main locks it: hangs for ever
 *   exit_holding --timed        main locks it with pthread_mutex_timedlock
 *                               and gives up after 2.5 s: no hang
 *   exit_holding --handed-over  the worker's lock is unlocked for it by
 *                               main before it exits: it does not exit
 *                               holding it, but main unlocks a mutex it
 *                               does not hold (a misuse of its own)
 *   exit_holding --process-hang a forked child takes a process-shared
 *                               mutex and exits holding it; the parent,
 *                               which has not reaped it, locks it: hangs
 *                               for ever
 */
#include "common.h"
#include <stdatomic.h>
#include <sys/mman.h>

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int locked, released;
static int handed_over;

static NOINLINE int update_table(int fail) {
    pthread_mutex_lock(&table_lock);
    if (fail)
        return -1; /* the bug: the error path forgets the unlock */
    pthread_mutex_unlock(&table_lock);
    return 0;
}

static void *worker_main(void *arg) {
    (void)arg;
    update_table(0);
    update_table(1);
    atomic_store(&locked, 1);
    if (handed_over)
        while (!atomic_load(&released))
            usleep(100);
    return NULL;
}

/* --process-hang: the owner is a whole process, gone (a zombie). */
static int process_hang(void) {
    pthread_mutex_t *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        die("mmap");
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    check(pthread_mutex_init(shared, &a), "pthread_mutex_init");
    int ready[2];
    if (pipe(ready) < 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        pthread_mutex_lock(shared);
        _exit(0); /* the bug: exits holding it */
    }
    char c;
    close(ready[1]);
    if (read(ready[0], &c, 1) != 0) /* EOF: the child has exited */
        die("read");
    printf("exit_holding: child %d exited\n", (int)child);
    fflush(stdout);
    pthread_mutex_lock(shared); /* for ever */
    return 0;
}

int main(int argc, char **argv) {
    if (has_flag(argc, argv, "--process-hang"))
        return process_hang();
    int hang = has_flag(argc, argv, "--hang");
    handed_over = has_flag(argc, argv, "--handed-over");
    pthread_t w = spawn("worker", worker_main, NULL);
    if (handed_over) {
        while (!atomic_load(&locked))
            usleep(100);
        pthread_mutex_unlock(&table_lock); /* for the worker */
        atomic_store(&released, 1);
    }
    pthread_join(w, NULL);
    if (hang) {
        pthread_mutex_lock(&table_lock); /* for ever */
        pthread_mutex_unlock(&table_lock);
    }
    if (has_flag(argc, argv, "--timed")) {
        struct timespec t = deadline_in_ms(2500);
        if (pthread_mutex_timedlock(&table_lock, &t) != ETIMEDOUT)
            die("pthread_mutex_timedlock did not time out");
    }
    int busy = pthread_mutex_trylock(&table_lock) == EBUSY;
    if (!busy)
        pthread_mutex_unlock(&table_lock);
    printf("exit_holding: the table lock is %s\n", busy ? "held for good" : "free");
    return 0;
}
